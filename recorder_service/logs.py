"""Logging: JSON lines in production, readable text on a terminal. Secrets never logged."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from opentelemetry import trace

from recorder_service.settings import Settings, is_secret_field

# Extra attributes worth carrying into JSON lines when a log call sets them.
_CONTEXT_FIELDS = (
    "meeting_id",
    "room",
    "recording_id",
    "event_id",
    "callback_id",
    "reason",
    "trace_id",
    "span_id",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Libraries whose DEBUG output carries request URLs or signing material (httpx logs full
# URLs at INFO; botocore logs Authorization headers and signatures at DEBUG).
_QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "botocore": logging.INFO,
    "aiobotocore": logging.INFO,
    "boto3": logging.INFO,
    "urllib3": logging.INFO,
}
# Last line of defence if a message ever carries one anyway: presigned query signatures and
# credentials, bearer tokens, Standard Webhooks signatures.
_SENSITIVE_PATTERNS = (
    re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"(v1,)[A-Za-z0-9+/]{20,}={0,2}"),
    re.compile(r"(whsec_)[A-Za-z0-9+/]+={0,2}"),
    # Playback tokens in a logged URL: the expiry stays readable, the signature does not.
    re.compile(r"([?&]token=[0-9]{0,11}\.?)[A-Za-z0-9_%-]+"),
)
_REDACTED = "[redacted]"


class TraceContextFilter(logging.Filter):
    """Stamps each record with the active span's trace_id/span_id (W3C hex) for correlation."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid and getattr(record, "trace_id", None) is None:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class RedactingFilter(logging.Filter):
    """Replaces the configured secrets and signature-like values in each message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        for pattern in _SENSITIVE_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + _REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


def secret_values(settings: Settings) -> list[str]:
    values: list[str] = []
    for name in settings.__struct_fields__:
        if not is_secret_field(name):
            continue
        value = getattr(settings, name)
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, tuple):
            values.extend(v for v in value if isinstance(v, str))
    if settings.callback_secret:
        values.append(settings.callback_secret.removeprefix("whsec_"))
    return values


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    handler.addFilter(TraceContextFilter())
    handler.addFilter(RedactingFilter(secret_values(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
