"""Inbound calls are throttled per automation with DRF's rate throttle (cache-based, the same
"<n>/<period>" syntax), read from AUTOMATION_THROTTLE_RATE at call time."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class AutomationThrottle(SimpleRateThrottle):
    scope = "automation"

    def __init__(self, automation_id: str):
        self.automation_id = automation_id
        self.rate = settings.AUTOMATION_THROTTLE_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_cache_key(self, request, view) -> str:
        return f"throttle_automation_{self.automation_id}"


def throttled(request, automation_id: str) -> float | None:
    """None when the call may go on, else the seconds to wait (for Retry-After)."""
    throttle = AutomationThrottle(automation_id)
    if throttle.allow_request(request, None):
        return None
    return throttle.wait() or 1.0
