#!/bin/bash
# Full measures for one representation: TOKCOMP=<name> benchmarks/token_formats/full.sh <tag>
# dev eval, near-topic eval, answerability benchmark with shipped thresholds; refit thresholds.
set -u
cd "$(dirname "$0")/../.."
tag=$1
out=benchmarks/token_formats/out/$tag
mkdir -p $out
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1
run() { .venv/bin/python benchmarks/token_formats/run.py "$@"; }
rm -rf $out/idx
RAG_INDEX_DIR=$out/idx run rag index > $out/index.txt 2>&1
RAG_INDEX_DIR=$out/idx run rag eval eval/dev.jsonl --offtopic eval/dev_offtopic.jsonl > $out/dev.txt 2>&1
RAG_INDEX_DIR=$out/idx run rag eval eval/dev_neartopic.jsonl > $out/near.txt 2>&1
run benchmarks/answerability.py --json $out/answerability-before.json > $out/answerability-before.txt 2>&1
run training/answerability.py --out $out/thresholds.json > $out/fit.txt 2>&1
echo done
