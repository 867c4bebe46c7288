"""Service configuration: one frozen Struct, read once from RECORDER_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from recorder_service.core.callbacks import decode_callback_secret
from recorder_service.core.client_address import parse_trusted_proxies
from recorder_service.core.daily_signature import decode_daily_secret
from recorder_service.core.secret_strength import is_placeholder, weakness

ENV_PREFIX = "RECORDER_"
DEFAULT_DAILY_API_URL = "https://api.daily.co/v1"

# Spans ~27.7 h: the contract asks for at least 24 h of retries before a callback is dead.
DEFAULT_CALLBACK_RETRY_SECONDS: tuple[float, ...] = (
    5,
    30,
    120,
    600,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
)

# Deletion retries never give up (S3 must confirm every removal): the last delay repeats.
DEFAULT_DELETION_RETRY_SECONDS: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600)
# The contract: playback secrets of fewer characters protect nothing.
MIN_PLAYBACK_SECRET_CHARS = 32

PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
PositiveDays = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(Exception):
    """Invalid configuration; the message names the variable and never its value."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "sqlite+aiosqlite:///./recorder.db"
    redis_url: str | None = None
    redis_prefix: str = "recorder:"
    daily_api_key: str = ""
    daily_api_url: str = DEFAULT_DAILY_API_URL
    daily_webhook_secrets: tuple[str, ...] = ()
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    presign_ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=604800)] = 3600
    callback_url: str | None = None
    callback_secret: str | None = None
    internal_api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    # server: this service starts both types over Daily's REST API, which is how Reflector records
    # today (its rooms leave recording disabled, so daily-js startRecording() would do nothing).
    # client: the seed's design, where the browser starts cloud with daily-js in rooms that enable it.
    cloud_start: Literal["client", "server"] = "server"
    # Daily event types relayed to Reflector as daily.event callbacks (one webhook for both).
    forward_daily_events: tuple[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")], ...] = ()
    background: bool = True
    reconcile_interval_seconds: PositiveSeconds = 300.0
    callback_retry_seconds: tuple[PositiveSeconds, ...] = DEFAULT_CALLBACK_RETRY_SECONDS
    rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 600
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR ranges).
    trusted_proxies: tuple[str, ...] = ()
    # Daily allows about one recording start per second per domain (5 per 5 s): every replica
    # draws its start calls, retries included, from one budget of this many calls per window.
    daily_start_budget_calls: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    daily_start_budget_window_seconds: PositiveSeconds = 5.0
    # How long a start waits for a call from the budget before answering 429.
    daily_start_budget_wait_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 20.0
    # When set, GET /metrics is served on this port only (not on the API's port).
    metrics_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    # Applied and ignored webhook events older than this are deleted from the inbox.
    inbox_retention_days: Annotated[float, msgspec.Meta(ge=1)] = 30.0
    # Not in the contract's table; ours to tune (tests shrink them).
    start_not_hosting_budget_seconds: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    start_not_hosting_delay_seconds: PositiveSeconds = 1.0
    daily_timeout_seconds: PositiveSeconds = 10.0
    daily_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    daily_retry_base_seconds: PositiveSeconds = 0.5
    callback_timeout_seconds: PositiveSeconds = 10.0
    outbox_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    outbox_poll_seconds: PositiveSeconds = 5.0
    outbox_lease_seconds: PositiveSeconds = 60.0
    inbox_sweep_seconds: PositiveSeconds = 60.0
    reconcile_page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100
    # Daily allows about 2 requests per second on GET /recordings.
    reconcile_page_pause_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    reconcile_lookback_hours: PositiveSeconds = 48.0
    stuck_recording_hours: PositiveSeconds = 6.0
    starting_claim_timeout_seconds: PositiveSeconds = 120.0
    # Recording privacy (contract §2, §4, §5): playback tokens, retention, deletions.
    playback_auth: Literal["token", "open"] = "token"
    playback_secret: str | None = None
    # Base of the playback_url the link endpoint answers (e.g. https://recorder.example.com);
    # unset: the request's own base URL, as the service sees it.
    public_base_url: str | None = None
    retention_cloud_days: PositiveDays | None = None
    retention_raw_tracks_days: PositiveDays | None = None
    retention_interval_seconds: PositiveSeconds = 3600.0
    deletion_retry_seconds: tuple[PositiveSeconds, ...] = DEFAULT_DELETION_RETRY_SECONDS
    deletion_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    deletion_poll_seconds: PositiveSeconds = 5.0
    deletion_lease_seconds: PositiveSeconds = 120.0
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


_LIST_FIELDS = {
    "daily_webhook_secrets",
    "cors_origins",
    "callback_retry_seconds",
    "forward_daily_events",
    "deletion_retry_seconds",
    "trusted_proxies",
}
_SECRET_FIELDS = {
    "daily_api_key",
    "daily_webhook_secrets",
    "callback_secret",
    "internal_api_key",
    "playback_secret",
}


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """RECORDER_* names that match no setting: likely typos, reported as warnings."""
    known = {env_name(f) for f in Settings.__struct_fields__}
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(env: Mapping[str, str]) -> Settings:
    known = set(Settings.__struct_fields__)
    raw: dict[str, object] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        field = key.removeprefix(ENV_PREFIX).lower()
        if field not in known:
            continue
        if value == "" and field not in _LIST_FIELDS:
            continue  # an empty variable means "use the default"
        raw[field] = [p.strip() for p in value.split(",") if p.strip()] if field in _LIST_FIELDS else value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    _check_consistency(settings)
    return settings


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int`, got `str` - at `$.presign_ttl_seconds`";
    # it never includes the value, so secrets cannot leak through this message.
    text = str(exc)
    reason, _, where = text.partition(" - at `$.")
    field = where.split("`")[0].split("[")[0].split(".")[0]
    if field:
        return f"{env_name(field)}: {reason}"
    return f"configuration: {reason}"


def _check_consistency(s: Settings) -> None:
    if s.daily_api_url.rstrip("/") == DEFAULT_DAILY_API_URL and not s.daily_api_key:
        raise ConfigError(
            f"{env_name('daily_api_key')}: required when {env_name('daily_api_url')} is Daily's API"
        )
    for secret in s.daily_webhook_secrets:
        try:
            decode_daily_secret(secret)
        except ValueError:
            raise ConfigError(f"{env_name('daily_webhook_secrets')}: every secret must be base64") from None
    if s.callback_url is not None:
        if not s.callback_url.startswith(("http://", "https://")):
            raise ConfigError(f"{env_name('callback_url')}: must be an http(s) URL")
        if s.callback_secret is None:
            raise ConfigError(f"{env_name('callback_secret')}: required with {env_name('callback_url')}")
    if s.callback_secret is not None:
        try:
            if not s.callback_secret.startswith("whsec_"):
                raise ValueError("no whsec_ prefix")
            decode_callback_secret(s.callback_secret)
        except ValueError:
            raise ConfigError(f"{env_name('callback_secret')}: must be whsec_<base64>") from None
    if not s.callback_retry_seconds:
        raise ConfigError(f"{env_name('callback_retry_seconds')}: needs at least one delay")
    if not s.database_url.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
        raise ConfigError(
            f"{env_name('database_url')}: must start with sqlite+aiosqlite:// or postgresql+psycopg://"
        )
    if s.redis_url is not None and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{env_name('redis_url')}: must be a redis:// or rediss:// URL")
    try:
        parse_trusted_proxies(s.trusted_proxies)
    except ValueError:
        raise ConfigError(
            f"{env_name('trusted_proxies')}: every entry must be an IP address or a CIDR range"
        ) from None
    _check_secrets(s)
    _check_privacy(s)


# Contract §2: an internal key under 32 characters or a Daily webhook secret under 16 bytes
# protects nothing. Standard Webhooks asks for callback secrets of 24 to 64 bytes.
MIN_INTERNAL_KEY_CHARS = 32
MIN_DAILY_WEBHOOK_SECRET_BYTES = 16
MIN_CALLBACK_SECRET_BYTES = 24


def _check_secrets(s: Settings) -> None:
    """Weak or placeholder secrets stop the process like any invalid value (never quoting them)."""
    problems: list[tuple[str, str | None]] = []
    if s.internal_api_key:
        problems.append(("internal_api_key", weakness(s.internal_api_key, min_length=MIN_INTERNAL_KEY_CHARS)))
    for secret in s.daily_webhook_secrets:
        size = len(decode_daily_secret(secret))
        problems.append(
            (
                "daily_webhook_secrets",
                weakness(secret, min_length=MIN_DAILY_WEBHOOK_SECRET_BYTES, unit="bytes", length=size),
            )
        )
    if s.callback_secret is not None:
        body = s.callback_secret.strip().removeprefix("whsec_")
        size = len(decode_callback_secret(s.callback_secret))
        problems.append(
            (
                "callback_secret",
                weakness(body, min_length=MIN_CALLBACK_SECRET_BYTES, unit="bytes (decoded)", length=size),
            )
        )
    if s.playback_secret:
        problems.append(
            ("playback_secret", weakness(s.playback_secret, min_length=MIN_PLAYBACK_SECRET_CHARS))
        )
    # With the simulator any key does; against Daily's API a template's placeholder is a mistake.
    if (
        s.daily_api_key
        and s.daily_api_url.rstrip("/") == DEFAULT_DAILY_API_URL
        and is_placeholder(s.daily_api_key)
    ):
        problems.append(("daily_api_key", "is a placeholder, not a secret"))
    for field in ("database_url", "redis_url"):
        url = getattr(s, field)
        password = _url_password(url) if url else None
        if password and is_placeholder(password):
            problems.append((field, "its password is a placeholder"))
    for field, problem in problems:
        if problem is not None:
            raise ConfigError(f"{env_name(field)}: {problem}")


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _check_privacy(s: Settings) -> None:
    if s.playback_auth == "token" and s.playback_secret is None:
        raise ConfigError(
            f"{env_name('playback_secret')}: required when {env_name('playback_auth')}=token "
            f"(at least {MIN_PLAYBACK_SECRET_CHARS} characters, shared with Reflector)"
        )
    if s.playback_secret is not None and len(s.playback_secret) < MIN_PLAYBACK_SECRET_CHARS:
        raise ConfigError(
            f"{env_name('playback_secret')}: must be at least {MIN_PLAYBACK_SECRET_CHARS} characters"
        )
    if s.public_base_url is not None and not s.public_base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{env_name('public_base_url')}: must be an http(s) URL")
    if not s.deletion_retry_seconds:
        raise ConfigError(f"{env_name('deletion_retry_seconds')}: needs at least one delay")


def is_secret_field(field: str) -> bool:
    return field in _SECRET_FIELDS
