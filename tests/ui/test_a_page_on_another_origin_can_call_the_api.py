"""A browser-based tool on another origin (a team's own page, a chat front end running in the
browser, the OpenAI JS SDK with ``dangerouslyAllowBrowser``) can call the API with a key: the
preflight is answered and every answer allows any origin. Safe because the API's only
credential is the key the page itself sends; no cookie is ever read or set, so a page without
a key can do nothing with it. The answer's request id and retry headers are readable too."""

from __future__ import annotations

import json

from playwright.sync_api import Browser

from conversations.models import ModelConfig, User
from tests.test_api_support import make_key
from tests.ui.conftest import LiveServer

CALL = """async ([url, key, stream]) => {
  const response = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json",
              "X-Stainless-Lang": "js"},
    body: JSON.stringify({model: "deepseek-chat", stream,
                          messages: [{role: "user", content: "[[sim: say=from afar]]"}]}),
  });
  return {status: response.status, requestId: response.headers.get("x-request-id"),
          body: await response.text()};
}"""


def test_a_page_on_another_origin_can_call_the_api(
    browser: Browser, chat_server: LiveServer, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    key = make_key(ui_user)
    context = browser.new_context()
    page = context.new_page()
    try:
        # Any page of another origin: the simulator's.
        page.goto(chat_server.simulator_url + "/models")
        answer = page.evaluate(CALL, [chat_server.url, key, False])
        assert answer["status"] == 200, answer
        assert json.loads(answer["body"])["choices"][0]["message"]["content"] == "from afar"
        assert answer["requestId"]
        streamed = page.evaluate(CALL, [chat_server.url, key, True])
        assert streamed["status"] == 200 and streamed["body"].endswith("data: [DONE]\n\n")
        models = page.evaluate(
            """async ([url, key]) => (await fetch(url + "/v1/models",
                   {headers: {"X-API-Key": key}})).json()""",
            [chat_server.url, key],
        )
        assert "deepseek-chat" in [m["id"] for m in models["data"]]
        refused = page.evaluate(CALL, [chat_server.url, "sk-team-" + "x" * 40, False])
        assert refused["status"] == 401
        assert json.loads(refused["body"])["error"]["type"] == "authentication_error"
    finally:
        context.close()
