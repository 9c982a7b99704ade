"""``GET /v1/models/{id}`` (and ``/models/{id}``) answers one model of the list, so that the
OpenAI SDK's ``client.models.retrieve`` works; it was a 404 "No such endpoint". A model the
key's user may not use, a disabled one and an unknown id are the same 404: the answer says
nothing of which models exist beyond the user's own."""

from __future__ import annotations

import httpx
import openai
import pytest

from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def key(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> str:
    return make_key(alice)


def _chat_only(alice: User, chat_model: ModelConfig) -> Policy:
    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(chat_model)
    UserLimits.objects.create(user=alice, policy=policy)
    return policy


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_the_sdk_retrieves_a_model_as_the_list_shows_it(base: str, key: str, prefix: str) -> None:
    client = openai.OpenAI(base_url=base + prefix, api_key=key, max_retries=0)
    model = client.models.retrieve("deepseek-reasoner")
    assert model.id == "deepseek-reasoner"
    assert model.object == "model" and model.owned_by == "deepseek"
    listed = {m.id: m for m in client.models.list()}
    assert model == listed["deepseek-reasoner"]


def test_raw_http_gets_the_same_object_as_one_item_of_the_list(base: str, key: str) -> None:
    listed = httpx.get(base + "/models", headers=bearer(key)).json()["data"]
    for path in ("/models/deepseek-chat", "/v1/models/deepseek-chat", "/models/deepseek-chat/"):
        response = httpx.get(base + path, headers=bearer(key))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
        assert (
            response.json()
            == listed[0]
            == {
                "id": "deepseek-chat",
                "object": "model",
                "owned_by": "deepseek",
            }
        )
    head = httpx.head(base + "/v1/models/deepseek-chat", headers=bearer(key))
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(response.content)


def test_a_model_not_the_users_a_disabled_one_and_an_unknown_id_look_the_same(
    base: str, key: str, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    _chat_only(alice, chat_model)
    ModelConfig.objects.create(
        name="deepseek-old", display_name="Old", upstream_model="deepseek-chat", enabled=False
    )
    errors = {}
    for name in ("deepseek-reasoner", "deepseek-old", "deepseek-nothing", "a%00b"):
        response = httpx.get(base + "/v1/models/" + name, headers=bearer(key))
        error = assert_envelope(response, 404, "invalid_request_error")
        assert error["code"] == "model_not_found" and error["param"] == "model"
        errors[name] = error["message"].replace(name, "<id>")
    assert errors["deepseek-reasoner"] == errors["deepseek-nothing"] == errors["deepseek-old"]
    assert "`deepseek-nothing` does not exist or you do not have access to it" in (
        errors["deepseek-nothing"].replace("<id>", "deepseek-nothing")
    )
    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("deepseek-reasoner")
    assert client.models.retrieve("deepseek-chat").id == "deepseek-chat"


def test_it_is_authenticated_like_the_list(
    base: str, key: str, alice: User, chat_model: ModelConfig
) -> None:
    path = base + "/v1/models/deepseek-chat"
    assert_envelope(httpx.get(path), 401, "authentication_error")
    assert_envelope(httpx.get(path, headers=bearer("sk-" + "x" * 40)), 401, "authentication_error")
    policy = _chat_only(alice, chat_model)
    Policy.objects.filter(pk=policy.pk).update(api_access=False)
    error = assert_envelope(httpx.get(path, headers=bearer(key)), 403, "permission_error")
    assert error["code"] == "api_access_denied"


def test_other_methods_are_refused_with_allow(base: str, key: str) -> None:
    for method in ("POST", "DELETE", "PUT"):
        response = httpx.request(method, base + "/v1/models/deepseek-chat", headers=bearer(key))
        assert_envelope(response, 405, "invalid_request_error")
        assert response.headers["allow"] == "GET, HEAD"
    preflight = httpx.options(
        base + "/models/deepseek-chat",
        headers={"Origin": "https://tool.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD"


def test_deeper_paths_stay_unknown(base: str, key: str) -> None:
    for path in ("/v1/models/deepseek-chat/x", "/v1/models//"):
        error = assert_envelope(
            httpx.get(base + path, headers=bearer(key)), 404, "invalid_request_error"
        )
        assert error["code"] == "not_found"
