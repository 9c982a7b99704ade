from __future__ import annotations

import httpx

from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}


def test_prefix_completion_under_beta_continues_an_open_code_fence() -> None:
    messages = [
        {"role": "user", "content": "Write a python function that counts words"},
        {"role": "assistant", "content": "```python\n", "prefix": True},
    ]
    with running_simulator() as url:
        response = httpx.post(
            f"{url}/beta/chat/completions",
            headers=AUTH,
            json={
                "model": "deepseek-flash",
                "thinking": {"type": "disabled"},
                "messages": messages,
                "stop": ["```"],
            },
        )
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    content = choice["message"]["content"]
    assert content.startswith("def ")
    assert "```" not in content


def test_the_v1_base_url_works_like_the_plain_one() -> None:
    with running_simulator() as url:
        response = httpx.post(
            f"{url}/v1/chat/completions",
            headers=AUTH,
            json={"model": "deepseek-flash", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 200


def test_stop_sequences_cut_the_reply() -> None:
    with running_simulator() as url:
        response = httpx.post(
            f"{url}/chat/completions",
            headers=AUTH,
            json={
                "model": "deepseek-flash",
                "thinking": {"type": "disabled"},
                "messages": [{"role": "user", "content": "[[sim: say=alpha STOP beta]]"}],
                "stop": ["STOP"],
            },
        )
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "alpha "
    assert choice["finish_reason"] == "stop"
