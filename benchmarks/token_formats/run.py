"""Run a rag command or script with the harness installed (cache + TOKCOMP transform).

TOKCOMP=int8 python benchmarks/token_formats/run.py rag eval eval/dev.jsonl --offtopic eval/dev_offtopic.jsonl
TOKCOMP=int8 python benchmarks/token_formats/run.py benchmarks/answerability.py --json out.json
"""

import atexit
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

harness.install()
harness.install_thresholds()
atexit.register(lambda: print(f"[tokcomp cache {harness.STATS}]", file=sys.stderr))
args = sys.argv[1:]
if args[0] == "rag":
    from rag.cli import main

    code = main(args[1:])
    sys.exit(code)
sys.argv = args
runpy.run_path(args[0], run_name="__main__")
