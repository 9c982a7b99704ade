"""A faithful fake DeepSeek Chat Completions server (plain ASGI, no Django).

See simulator/README.md for profiles, knobs and the `[[sim: ...]]` test directives.
"""

from __future__ import annotations

from simulator.app import SimulatorApp, create_app
from simulator.config import SimulatorConfig
from simulator.tokens import count_tokens

__all__ = ["SimulatorApp", "SimulatorConfig", "count_tokens", "create_app"]
