"""Entry point of the orchestrator's worker: ``python -m workers.orchestrator``."""

from meshkit.mesh import load_mesh
from meshkit.runtime import cli_main, configure_logging
from orchestrator.models.provider import LlmSettings
from orchestrator.weather import WeatherSettings
from orchestrator.worker import main

if __name__ == "__main__":
    configure_logging()
    cli_main("orchestrator", lambda: main(load_mesh(), LlmSettings(), WeatherSettings()))
