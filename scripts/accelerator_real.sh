#!/bin/bash
# A lent-H200 session's training (session 9): the realistic SRResNet fine-tune (issue 13, weights/srresnet_x4_real)
# and two adversarial runs (issue 14; run "a" is weights/srgan_x4_real) side by side on one GPU, under JAX.
#
# The machine has JAX but no Keras or TensorFlow, and the working tree travels with a 64 MiB limit. Here, before the
# call: the photos in .devdata/bsds500, configs/degradation_real_lr75.json in .devdata/, Keras 3.15.1, namex and
# optree as cp312 wheels in .whl/ (both folders in .git/info/exclude), and the .onnx files moved out of weights/ for
# the call. Then, through the device tool: run `bash scripts/accelerator_real.sh` with carry [".devdata", ".whl"].
# Everything under $OUT comes back (at most 8 files of 16 MiB: hence no discriminator, and one kept snapshot a run).
#
# Session 9 ran this once with the defaults (PM=8.4, GM=8.3 minutes: 12,085 pretrain steps, 5,016 and 5,158 GAN
# steps), then again at once on the warm machine with INIT_REAL=.devdata/real1.weights.h5 LR_REAL=3e-5 PATCHES=60000
# SEED_REAL=21 PM=3.5: 6,885 more steps, weights/srresnet_x4_real.weights.h5. That call ran an edited copy of this
# script which also continued run b from its own file for 2,695 steps (neither measured nor kept); this script
# cannot start a GAN run from another file, and RUN_GANS=0 leaves both out.
set -u
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_MEM_FRACTION=0.25 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
D=.devdata/bsds500; C=.devdata/degradation_real_lr75.json; I=weights/srresnet_x4_real.weights.h5; R=/tmp/run; mkdir -p $R
echo "setup $(( $(date +%s) - T0 )) s"
timeout 560 python3 scripts/pretrain_on_accelerator.py --photos $D --init ${INIT_REAL:-$I} --out $R/real.weights.h5 \
  --degradation-config $C --hr-size 128 --batch-size 32 --lr ${LR_REAL:-1e-4} --patches ${PATCHES:-120000} \
  --workers 8 --minutes ${PM:-8.4} --steps 1000000 --log-every 250 --save-every 2000 --seed ${SEED_REAL:-11} \
  > $OUT/real.log 2>&1 &
GAN="--photos $D --init $I --degradation-config $C --hr-size 128 --batch-size 16 --lr 1e-4 --patches 40000
  --workers 4 --d-warmup 300 --discriminator unet --gan-loss ragan --content-loss vgg54 --pixel-weight 1
  --ldl-weight 1 --lattice-weight 100 --lowfreq-weight 30 --overshoot-weight 300 --ema 0.999 --steps 1000000
  --save-every 500 --keep-every 500 --log-every 250 --no-save-discriminator --minutes ${GM:-8.3}"
if [ "${RUN_GANS:-1}" = 1 ]; then
  timeout 560 python3 scripts/gan_on_accelerator.py $GAN --adv-weight 0.02 --seed 12 --out $R/a/g.weights.h5 \
    > $OUT/gana.log 2>&1 &
  timeout 560 python3 scripts/gan_on_accelerator.py $GAN --adv-weight 0.1 --seed 13 --out $R/b/g.weights.h5 \
    > $OUT/ganb.log 2>&1 &
fi
wait
cp $R/real.weights.h5 $OUT/ 2>/dev/null
for x in a b; do
  [ -d $R/$x ] || continue
  cp $R/$x/g.weights.h5 $OUT/gan$x.weights.h5
  mid=$(ls $R/$x/g.step*.weights.h5 2>/dev/null | sort -V | awk '{a[NR]=$0} END {if (NR) print a[int((NR+1)/2)]}')
  [ -n "$mid" ] && cp "$mid" $OUT/gan$x.$(basename "$mid" | cut -d. -f2).weights.h5
done
ls -la $OUT; tail -n 4 $OUT/*.log; echo "total $(( $(date +%s) - T0 )) s"
