"""A local stand-in for Daily's REST API and webhooks, served over real HTTP.

REST under /v1 (point RECORDER_DAILY_API_URL there), control endpoints under /_sim."""

from recorder_service.tools.simulator.app import create_simulator_app, run_simulator
from recorder_service.tools.simulator.config import SimulatorConfig
from recorder_service.tools.simulator.model import RESERVED_INSTANCE_ID
from recorder_service.tools.simulator.signing import sign_webhook

__all__ = ["RESERVED_INSTANCE_ID", "SimulatorConfig", "create_simulator_app", "run_simulator", "sign_webhook"]
