"""Access to the app's typed settings from request code."""

from flask import current_app

from plugin.config import EXTENSION_KEY, Settings


def settings() -> Settings:
    value: Settings = current_app.extensions[EXTENSION_KEY]
    return value
