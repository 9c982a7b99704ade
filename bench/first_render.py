"""Opening a long conversation in a real Chromium: how soon the page answers the keyboard, how
soon every reply is drawn as markdown, and how long the main thread was blocked, against an
empty conversation in the same run.

    .venv/bin/python bench/first_render.py [--turns 150] [--runs 5] [--shared]

Each conversation holds ``--turns`` turns (a short question, then a reply of realistic markdown:
headings, lists, a highlighted code block, inline code, a table every third reply, math every
fifth, a thought before every fourth). For each run a fresh tab navigates to the conversation
and presses a key in the composer as soon as the document is parsed (module scripts have run).
Reported (median and worst over the runs, ms from the navigation's start):

- ``kB``: the page's size as served (Navigation Timing decodedBodySize; the app does not
  compress pages);
- ``served``: the page's last byte received (the server's part, Navigation Timing responseEnd);

- ``input``: the key's keydown to the next paint (Event Timing: startTime + duration), i.e. when
  the typed character is on screen (0: it took under 16 ms, Event Timing's floor, so no entry);
- ``all drawn``: when every article is on the page and none holds a placeholder (markdown not
  drawn yet);
- ``long tasks``: the sum of the long tasks (> 50 ms, PerformanceObserver) until then, and the
  longest one;
- ``settings save``: then Settings is opened and saved unchanged; the sum of the long tasks from
  the click on Save to 500 ms after the dialog has closed (the messages drawn again, if any).

``--shared`` opens the same conversations through a share link (/s/<token>/, static/js/shared.js)
instead: the page has no composer, so the key is pressed on the page (``input`` is then when the
page could paint after it), and no settings (``settings save`` is left out).

Uses DATABASE_URL (migrated here), or an embedded PostgreSQL; /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import close_django_connections, setup_django, start_daphne  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "bench-first-render-pw"

REPLY = """## Step {i}: deploying the service

Here is how to roll out **version {i}** without downtime. First check the `config.yaml`
settings, then run the migration, and only then switch the traffic.

1. Build the image with `docker build -t app:{i} .`
2. Run the migrations against a *copy* of the database
3. Switch the load balancer to the new pool

```python
import subprocess
from pathlib import Path


def deploy(version: int, root: Path = Path("/srv/app")) -> None:
    \"\"\"Roll out one version; raise if a step fails.\"\"\"
    for step in ("build", "migrate", "switch"):
        result = subprocess.run(["make", step, f"VERSION={{version}}"], cwd=root)
        if result.returncode != 0:
            raise RuntimeError(f"{{step}} failed with {{result.returncode}}")
    print("deployed", version)


if __name__ == "__main__":
    deploy({i})
```

> Keep the old pool running for a few minutes: a rollback is then one command.

See [the runbook](https://example.com/runbook/{i}) for the details.
"""
TABLE = """
| Stage | Time | Risk |
|-------|------|------|
| build | 2 min | low |
| migrate | 5 min | medium |
| switch | 10 s | high |
"""
MATH = "\nThe error budget is $e = 1 - \\frac{{u}}{{t}}$ and over a month\n\n$$\\sum_{{d=1}}^{{30}} e_d \\le 0.001$$\n"
THOUGHT = "The user wants step {i}. I should list the commands, show the script, and warn about the rollback window."


def reply_text(i: int) -> str:
    text = REPLY.format(i=i)
    if i % 3 == 0:
        text += TABLE
    if i % 5 == 0:
        text += MATH.format()
    return text


# Collected in the page from its first script on: long tasks, and the first keydown's timing.
PROBE = """
window.__bench = { longTasks: [], keydown: null };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__bench.longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.name === "keydown" && !window.__bench.keydown) {
      window.__bench.keydown = entry.startTime + entry.duration;
    }
  }
}).observe({ type: "event", durationThreshold: 16, buffered: true });
"""

# Every article present and drawn: resolves to the time (ms since navigation) it first holds.
ALL_DRAWN = """(count) => {
  const articles = document.querySelectorAll(".messages > article");
  if (articles.length !== count) return false;
  if (document.querySelector(".messages [data-placeholder]")) return false;
  return performance.now();
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_conversations(turns: int) -> tuple[str, str]:
    """A user, an empty conversation and one of ``turns`` turns; their ids (or, ``shared``, the
    paths of share links to them)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from conversations.models import Conversation, Message, ModelConfig, User

    user, _ = User.objects.get_or_create(username="bench-render")
    user.set_password(PASSWORD)
    user.save()
    model = ModelConfig.objects.get(name="deepseek-chat")
    Conversation.objects.filter(owner=user).delete()
    empty = Conversation.objects.create(owner=user, model=model, title="Empty")
    long = Conversation.objects.create(owner=user, model=model, title=f"{turns} turns")
    parent = None
    for i in range(turns):
        parent = Message.objects.create(
            conversation=long,
            parent=parent,
            role="user",
            author=user,
            content=f"How do I do step {i} of the deployment? Show me the script.",
        )
        parent = Message.objects.create(
            conversation=long,
            parent=parent,
            role="assistant",
            model=model,
            content=reply_text(i),
            reasoning=THOUGHT.format(i=i) if i % 4 == 0 else "",
            status="complete",
            finish_reason="stop",
        )
    return str(empty.id), str(long.id)


def share_links(*conversation_ids: str) -> list[str]:
    """A share link's path to each conversation (its owner opens it, signed in)."""
    from conversations.models import Conversation
    from conversations.sharing import create_share_link

    paths = []
    for conversation_id in conversation_ids:
        conversation = Conversation.objects.get(pk=conversation_id)
        _, token = create_share_link(conversation.owner, conversation.id)
        paths.append(f"/s/{token}/")
    return paths


def open_once(context: Any, url: str, count: int, shared: bool = False) -> dict[str, float]:
    page = context.new_page()
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.keyboard.press("x")  # the script focuses the composer when it has run
        drawn = page.wait_for_function(ALL_DRAWN, arg=count, polling="raf", timeout=120_000)
        all_drawn = float(drawn.json_value())
        page.wait_for_timeout(300)  # let the Event Timing entry and the last long task land
        probe = page.evaluate("window.__bench")
        tasks = probe["longTasks"]
        navigation = page.evaluate(
            "(({responseEnd, decodedBodySize}) => ({responseEnd, decodedBodySize}))"
            "(performance.getEntriesByType('navigation')[0])"
        )
        result = {
            "kB": float(navigation["decodedBodySize"]) / 1000,
            "served": float(navigation["responseEnd"]),
            "input": float(probe["keydown"] or 0.0),
            "all drawn": all_drawn,
            "long tasks": float(sum(tasks)),
            "longest task": float(max(tasks, default=0.0)),
        }
        if shared:
            return result
        typed = page.evaluate("document.getElementById('composer-input').value")
        if typed != "x":
            raise RuntimeError(f"the composer holds {typed!r}, not the key pressed")
        # CSS selectors: Playwright's role queries walk the page's accessibility tree, in the page.
        page.locator("#settings-open").click()
        page.locator("#settings-dialog").wait_for(state="visible")
        page.wait_for_timeout(300)
        before_save = len(page.evaluate("window.__bench.longTasks"))
        page.locator("#settings-dialog button[type=submit]").click()
        page.locator("#settings-dialog").wait_for(state="hidden")
        page.wait_for_timeout(500)
        after_save = page.evaluate("window.__bench.longTasks")[before_save:]
        return {**result, "settings save": float(sum(after_save))}
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shared", action="store_true", help="open them through share links")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from chatsite.launcher import Supervisor

    supervisor = Supervisor()
    daphne = None
    try:
        setup_django(supervisor, "bench-first-render")
        empty_id, long_id = create_conversations(args.turns)
        if args.shared:
            paths = share_links(empty_id, long_id)
        else:
            paths = [f"/c/{empty_id}/", f"/c/{long_id}/"]
        database_url = os.environ["DATABASE_URL"]
        close_django_connections()
        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=database_url,
            DEBUG="1",  # plain-HTTP session cookies on loopback, as `make run`
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        log = ROOT / ".data" / "bench-first-render-daphne.log"
        log.parent.mkdir(exist_ok=True)
        daphne = start_daphne(port, env, log)
        origin = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            login = context.new_page()
            login.goto(f"{origin}/accounts/login/")
            login.get_by_label("Username").fill("bench-render")
            login.get_by_label("Password").fill(PASSWORD)
            login.get_by_role("button", name="Sign in").click()
            login.wait_for_url(f"{origin}/")
            login.close()
            context.add_init_script(PROBE)
            cases = [("empty", paths[0], 0), (f"{args.turns} turns", paths[1], 2 * args.turns)]
            # One warm-up each (caches, compiled scripts), then the runs interleaved.
            for _, path, count in cases:
                open_once(context, f"{origin}{path}", count, args.shared)
            results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in cases}
            for _ in range(args.runs):
                for name, path, count in cases:
                    results[name].append(open_once(context, f"{origin}{path}", count, args.shared))
            browser.close()
        where = "share link" if args.shared else "conversation page"
        print(
            f"first render ({where}), {args.runs} runs each (median / worst, ms from navigation start)"
        )
        for name, runs in results.items():
            cells = []
            for metric in runs[0]:
                values = [run[metric] for run in runs]
                cells.append(f"{metric} {statistics.median(values):7.0f} / {max(values):7.0f}")
            print(f"  {name:>10}: " + "   ".join(cells))
    finally:
        if daphne is not None:
            daphne.stop()
        supervisor.stop_all()


if __name__ == "__main__":
    main()
