from __future__ import annotations

from simulator.server import main

if __name__ == "__main__":
    main()
