#!/bin/bash
# Issue 10 device check: the CUDA paths of the divergence guard, device validation and eval.
export PYTHONPATH=$PWD SEGLAB_CACHE_DIR=$OUT/cache
T="--data shapes --shapes train_size=16 --shapes val_size=8 --shapes image_size=64 --model tiny_unet_small --epochs 2 --batch-size 8 --crop-size 0 --preview-images 1 --quiet"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.device_count())"
echo "== 1 bf16 run on cuda"; python -m seglab train $T --device cuda --out $OUT/runs/bf16 2>&1 | tail -2; echo "rc=${PIPESTATUS[0]}"
echo "== 2 fp16 run on cuda"; python -m seglab train $T --device cuda --amp-dtype float16 --out $OUT/runs/fp16 2>&1 | tail -2; echo "rc=${PIPESTATUS[0]}"
echo "== 3 adamw lr 1e4 on cuda"; python -m seglab train $T --device cuda --lr 10000 --out $OUT/runs/absurd 2>&1 | tail -2; echo "rc=${PIPESTATUS[0]}"
echo "== 4 sgd lr 100 on cuda"; python -m seglab train $T --device cuda --epochs 8 --optimizer sgd --lr 100 --schedule constant --out $OUT/runs/sgd 2>&1 | tail -2; echo "rc=${PIPESTATUS[0]}"
python - <<'PY'
import os, json, torch
from pathlib import Path
from seglab.checkpoint import load_checkpoint
root = Path(os.environ["OUT"]) / "runs"
for run in sorted(root.iterdir()):
    status = json.loads((run / "status.json").read_text())
    files = {}
    for name in ("best.pt", "last.pt"):
        if (run / name).exists():
            try:
                files[name] = f"ok step {load_checkpoint(run / name).step}"
            except Exception as error:
                files[name] = f"REFUSED {error}"
    print(run.name, status["state"], (status.get("error") or "")[:160], files)
PY
echo "== 5 eval on cuda"; python -m seglab eval --checkpoint $OUT/runs/bf16 --device cuda 2>&1 | grep -E "mIoU|error"; echo "rc=${PIPESTATUS[0]}"
echo "== 6 eval --device cuda:7"; python -m seglab eval --checkpoint $OUT/runs/bf16 --device cuda:7 2>&1 | tail -1; echo "rc=${PIPESTATUS[0]}"
echo "== 7 pytest (cuda-visible)"; timeout 300 python -m pytest tests/test_divergence.py tests/test_options.py -q -p no:cacheprovider 2>&1 | tail -2
