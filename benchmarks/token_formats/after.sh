#!/bin/bash
# After re-fit: TOKCOMP=<name> benchmarks/token_formats/after.sh <tag>  (needs full.sh's index and thresholds.json)
set -u
cd "$(dirname "$0")/../.."
tag=$1
out=benchmarks/token_formats/out/$tag
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 TOKCOMP_THRESHOLDS=$out/thresholds.json
run() { .venv/bin/python benchmarks/token_formats/run.py "$@"; }
RAG_INDEX_DIR=$out/idx run rag eval eval/dev.jsonl --offtopic eval/dev_offtopic.jsonl > $out/dev-after.txt 2>&1
RAG_INDEX_DIR=$out/idx run rag eval eval/dev_neartopic.jsonl > $out/near-after.txt 2>&1
run benchmarks/answerability.py --json $out/answerability-after.json > $out/answerability-after.txt 2>&1
echo done
