"""The project's own deploy check: the published development key must never serve."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    dev_key = getattr(settings, "DEVELOPMENT_SECRET_KEY", None)
    if not settings.DEBUG and dev_key and settings.SECRET_KEY == dev_key:
        return [Error(
            "SECRET_KEY is the development key published in this repository, and DEBUG is "
            "off: sessions and signatures could be forged by anyone.",
            hint="Set the SECRET_KEY environment variable to a long random value.",
            id="demo.E001",
        )]
    return []
