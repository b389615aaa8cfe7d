#!/bin/bash
# The next lent-H200 session (prepared in session 9): continue srgan_x4_real (issue 14) in two adversarial runs side
# by side, with the crop-mean colour loss against its tint and a stronger lattice term against its grid, and keep
# the discriminators this time (split in 15 MB parts: the U-Net's 17.5 MB file is over the 16 MiB return limit).
#
# Preparation here, as for scripts/accelerator_real.sh: the photos in .devdata/bsds500, the degradation mix in
# .devdata/degradation_real_lr75.json, Keras 3.15.1 + namex + optree cp312 wheels in .whl/, the .onnx files moved out
# of weights/ for the call (64 MiB limit). Then: run `bash scripts/accelerator_continue.sh`, carry [".devdata",
# ".whl"], timeout_s 580. Back here: `cat ganX.d.part.* > ganX.discriminator.weights.h5` for --init-discriminator.
# GM (minutes, default 8.3) bounds each run; SMALL=1 shrinks everything for a CPU rehearsal.
set -u
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.4 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import jax, keras, onnxruntime as ort; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__,
  'onnxruntime', ort.__version__, ort.get_available_providers())" || exit 1
D=.devdata/bsds500; C=.devdata/degradation_real_lr75.json; R=/tmp/run; mkdir -p $R
SIZE="--patches 40000 --workers 7 --batch-size 16 --log-every 250 --save-every 500"
[ "${SMALL:-0}" = 1 ] && SIZE="--patches 64 --workers 2 --batch-size 2 --log-every 1 --save-every 2 --blocks 16"
echo "setup $(( $(date +%s) - T0 )) s"
GAN="--photos $D --init weights/srgan_x4_real.weights.h5 --degradation-config $C --hr-size 128 --lr 1e-4
  --d-warmup ${WARMUP:-500} --discriminator unet --gan-loss ragan --content-loss vgg54 --pixel-weight 1 --ldl-weight 1
  --lattice-weight 300 --lowfreq-weight 30 --colour-weight 3 --overshoot-weight 300 --ema 0.999 --steps 1000000
  --minutes ${GM:-8.3} $SIZE"
timeout 560 python3 scripts/gan_on_accelerator.py $GAN --adv-weight 0.02 --seed 31 --out $R/a/g.weights.h5 \
  > $OUT/gana.log 2>&1 &
timeout 560 python3 scripts/gan_on_accelerator.py $GAN --adv-weight 0.03 --seed 32 --out $R/b/g.weights.h5 \
  > $OUT/ganb.log 2>&1 &
wait
for x in a b; do
  cp $R/$x/g.weights.h5 $OUT/gan$x.weights.h5 && split -b 15m $R/$x/g.discriminator.weights.h5 $OUT/gan$x.d.part.
done
ls -la $OUT; tail -n 3 $OUT/*.log; echo "total $(( $(date +%s) - T0 )) s"
