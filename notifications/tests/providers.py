"""Stand-ins for an outside SMS provider, configured with override_settings
(``NOTIFICATIONS_SMS_PROVIDER = "notifications.tests.providers.FlakyProvider"``)."""

from __future__ import annotations

import threading
import time

from notifications.exceptions import ChannelError, PermanentChannelError


class FlakyProvider:
    """Fails (transiently) ``failures`` times, then accepts; remembers what it accepted."""

    failures = 0
    delay = 0.0
    accepted: list[str] = []
    calls = 0
    _lock = threading.Lock()

    @classmethod
    def reset(cls, *, failures: int = 0, delay: float = 0.0) -> None:
        cls.failures, cls.delay, cls.accepted, cls.calls = failures, delay, [], 0

    def send(self, notification) -> str:
        with self._lock:
            type(self).calls += 1
            failing = self.failures > 0
            if failing:
                type(self).failures -= 1
        time.sleep(self.delay)
        if failing:
            raise ChannelError("provider timed out")
        with self._lock:
            self.accepted.append(notification.notification_id)
            return f"flaky-{len(self.accepted)}"


class RejectingProvider:
    def send(self, notification) -> str:
        raise PermanentChannelError("DND: number is on the do-not-disturb registry")
