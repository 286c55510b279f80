"""Every failed password check counts toward the sign-in limits, whichever way it came in (Django
sends `user_login_failed` for the sign-in endpoint, basic auth and the admin's login alike)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from . import throttling


@receiver(user_login_failed, dispatch_uid="count-failed-signin")
def _count_failure(sender, credentials, request=None, **kwargs):
    identifier = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("email")
    if request is not None and isinstance(identifier, str):
        throttling.record_failure(request, identifier)
