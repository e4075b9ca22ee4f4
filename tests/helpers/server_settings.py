"""The served apps' settings file (notebooks/apps_server/voila.py), read without starting a server."""

from __future__ import annotations

import runpy

from serverless_ml.apps.voila import voila_settings_folder


class _Config:
    "A stand-in for traitlets' config object: attribute access creates sections."

    def __getattr__(self, name):
        section = type("Section", (), {})()
        setattr(self, name, section)
        return section


def voila_settings() -> dict:
    "The globals of notebooks/apps_server/voila.py, run with a stand-in for traitlets' config."
    return runpy.run_path(str(voila_settings_folder() / "voila.py"), init_globals={"get_config": _Config})
