"""Entry point of any team's worker: ``python -m workers.team <team>``.

The team is a ``[teams.<team>]`` entry of the mesh file; its code is the
package that entry names (``services.<team>`` by default).
"""

import sys

from meshkit.runtime import cli_main, configure_logging
from meshkit.team_worker import run_team

if __name__ == "__main__":
    configure_logging()
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python -m workers.team <team>   (a team of the mesh file)")
    team = sys.argv[1]
    cli_main(team, lambda: run_team(team))
