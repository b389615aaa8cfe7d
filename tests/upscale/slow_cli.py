"""The real `srgan upscale` command line in a child process, each image slowed down by a sleep: long enough for a
test to send a signal in the middle of a batch, or for two runs to overlap."""

import subprocess
import sys

SLOW_RUN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started where Ctrl-C is ignored (a & job)
from srgan_cli.upscale.inference import Upscaler
plain, delay = Upscaler.upscale_photo, float(sys.argv[1])
def slow(self, *args, **kwargs):
    time.sleep(delay)
    return plain(self, *args, **kwargs)
Upscaler.upscale_photo = slow
from srgan_cli.cli import main
sys.argv = ["srgan", "upscale", *sys.argv[2:]]
main()
"""


def start_slow_upscale(seconds_per_image, *args):
    """Popen of `srgan upscale ARGS` sleeping `seconds_per_image` before each image (text stdout and stderr)."""
    return subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(seconds_per_image), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
