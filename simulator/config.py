"""Simulator configuration and the two upstream eras it can imitate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProfileName = Literal["current-2026", "legacy-2025"]
UsagePlacement = Literal["finish", "trailing"]
ReasonerInputPolicy = Literal["reject", "ignore"]

PROFILES: tuple[ProfileName, ...] = ("current-2026", "legacy-2025")


@dataclass(frozen=True)
class ModelSpec:
    """Limits of one model id within a profile (see deepseek-api.md §7.2)."""

    id: str
    context_length: int
    max_tokens_limit: int
    default_max_tokens: int
    # Mode when the request has no `thinking` field (V4: on; deepseek-chat: off).
    thinking_default: bool
    # deepseek-reasoner is always thinking; `thinking: disabled` cannot turn it off.
    thinking_fixed: bool


# V4 limits: 1M context, 384K output. The default max_tokens for V4 is not documented; 32K
# matches the V3.x reasoner default and keeps the context check meaningful.
_V4_CONTEXT = 1_048_576
_V4_MAX_OUTPUT = 393_216
_V4_DEFAULT_MAX = 32_768

CURRENT_MODELS: dict[str, ModelSpec] = {
    name: ModelSpec(name, _V4_CONTEXT, _V4_MAX_OUTPUT, _V4_DEFAULT_MAX, True, False)
    for name in ("deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro")
}

# legacy-2025 follows the V3.2 era (Dec 2025, when the captured fixtures were recorded):
# 128K context for both ids; chat answers ≤8K (default 4K), reasoner ≤64K incl. CoT
# (default 32K). `thinking: enabled` still switches deepseek-chat into thinking mode.
LEGACY_CONTEXT = 131_072
LEGACY_MODELS: dict[str, ModelSpec] = {
    "deepseek-chat": ModelSpec("deepseek-chat", LEGACY_CONTEXT, 8192, 4096, False, False),
    "deepseek-reasoner": ModelSpec("deepseek-reasoner", LEGACY_CONTEXT, 65_536, 32_768, True, True),
}

RETIRED_IN_CURRENT = ("deepseek-chat", "deepseek-reasoner")


def models_for(profile: ProfileName) -> dict[str, ModelSpec]:
    return CURRENT_MODELS if profile == "current-2026" else LEGACY_MODELS


@dataclass
class SimulatorConfig:
    """Knobs of one simulator instance; every field can also be set from the command line."""

    profile: ProfileName = "current-2026"
    # None accepts any `Bearer sk-...` key; otherwise only this exact key.
    api_key: str | None = None
    first_token_latency_s: float = 0.0
    # 0 means as fast as the event loop allows.
    tokens_per_s: float = 0.0
    # Tokens carried by one content/reasoning chunk.
    chunk_tokens: int = 2
    keepalive_interval_s: float = 2.0
    queue_delay_s: float = 0.0
    # Upstream closes a request whose inference has not started within 10 minutes.
    queue_timeout_s: float | None = 600.0
    # None: unlimited. Requests beyond it get a 429 like V4's concurrency limit.
    max_concurrency: int | None = None
    usage_placement: UsagePlacement = "finish"
    reasoner_input_policy: ReasonerInputPolicy = "reject"
    seed: int = 0
    # Overrides every model's context length (lets tests hit the context error cheaply).
    context_length: int | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {PROFILES}")
        if self.usage_placement not in ("finish", "trailing"):
            raise ValueError("usage_placement must be 'finish' or 'trailing'")
        if self.reasoner_input_policy not in ("reject", "ignore"):
            raise ValueError("reasoner_input_policy must be 'reject' or 'ignore'")
        if self.chunk_tokens < 1:
            raise ValueError("chunk_tokens must be at least 1")
        if self.tokens_per_s < 0 or self.first_token_latency_s < 0 or self.queue_delay_s < 0:
            raise ValueError("rates and delays cannot be negative")
        if self.keepalive_interval_s <= 0:
            raise ValueError("keepalive_interval_s must be positive")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1 (or None for unlimited)")

    def model_spec(self, model: str) -> ModelSpec | None:
        spec = models_for(self.profile).get(model)
        if spec is None or self.context_length is None:
            return spec
        return ModelSpec(
            spec.id,
            self.context_length,
            spec.max_tokens_limit,
            spec.default_max_tokens,
            spec.thinking_default,
            spec.thinking_fixed,
        )
