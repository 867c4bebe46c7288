"""Injected faults, persistent latency and the REST call log, for tests and the demo."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from recorder_service.tools.simulator.errors import DailyError, error_type_for

ANY_OPERATION = "*"


@dataclass
class Fault:
    operation: str
    status: int  # 0 = latency only
    remaining: int
    latency_s: float = 0.0
    error: str | None = None
    info: str | None = None
    # Calls of the operation to let through untouched before the fault applies.
    after: int = 0

    def as_error(self) -> DailyError | None:
        if self.status == 0:
            return None
        return DailyError(
            self.status, self.error or error_type_for(self.status), self.info or "simulated fault"
        )


class FaultBook:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.latency_s: dict[str, float] = {}

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def set_latency(self, operation: str, latency_s: float) -> None:
        if latency_s <= 0:
            self.latency_s.pop(operation, None)
        else:
            self.latency_s[operation] = latency_s

    def clear(self) -> None:
        self.faults.clear()
        self.latency_s.clear()

    def take(self, operation: str) -> Fault | None:
        """The first fault that still applies to this call, used up by one."""
        for fault in self.faults:
            if fault.remaining > 0 and fault.operation in (operation, ANY_OPERATION):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.remaining -= 1
                return fault
        return None

    def latency_for(self, operation: str) -> float:
        return self.latency_s.get(operation, self.latency_s.get(ANY_OPERATION, 0.0))


class CallLog:
    def __init__(self) -> None:
        self.outcomes: Counter[tuple[str, int]] = Counter()
        self.starts: Counter[tuple[str, str, str]] = Counter()
        # maxDuration of the latest successful start per (room, type, instanceId).
        self.max_durations: dict[tuple[str, str, str], int | None] = {}

    def record(self, operation: str, status: int) -> None:
        self.outcomes[(operation, status)] += 1

    def record_start(
        self, room_name: str, recording_type: str, instance_id: str, max_duration_s: int | None = None
    ) -> None:
        self.starts[(room_name, recording_type, instance_id)] += 1
        self.max_durations[(room_name, recording_type, instance_id)] = max_duration_s

    def clear(self) -> None:
        self.outcomes.clear()
        self.starts.clear()
        self.max_durations.clear()
