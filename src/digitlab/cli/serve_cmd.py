"""`digitlab serve MODEL`: the draw-a-digit page and its JSON API."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import check_range
from .common import Commands, Context, add_command, add_device_flag, device_from_args

EXAMPLES = """\
  digitlab serve runs/cnn10                    then open http://127.0.0.1:8000 and draw
  digitlab serve runs/cnn10 --port 8080
  curl -s --data-binary @samples/seven.jpg http://127.0.0.1:8000/api/predict
  digitlab serve runs/cnn10 --corrections my-digits   the page can save what it misread, to learn from
  (the API's documentation: http://127.0.0.1:8000/docs)

Limits (per server process): request headers within 10 s, an upload within 15 s, idle
keep-alive connections closed after 5 s, at most 10,000 connections, 64 MB of uploads held,
256 predictions waiting and 4 large (over 1 MP) images; past a limit, 503 with Retry-After.
"""


def add_parser(commands: Commands) -> None:
    parser = add_command(
        commands, "serve", "a web page to draw digits for a trained model, and a JSON API", EXAMPLES, run
    )
    parser.add_argument("model_path", metavar="MODEL", type=Path, help="a run folder or its model.json")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); each holds the model, with the limits below",
    )
    parser.add_argument(
        "--corrections",
        metavar="DIR",
        type=Path,
        help="let the page save corrections (the 28x28 it saw, under the right label) to DIR/<label>/ "
        "for `digitlab train --data DIR --init MODEL` (default: off)",
    )
    parser.add_argument(
        "--lines",
        metavar="DIR",
        type=Path,
        help="a line reader (`digitlab train --model line-reader`) that checks each number's lines, as "
        "`predict --lines` does: the page says whether it agrees",
    )
    add_device_flag(parser, "the model runs (each server process holds it there)")


MAX_WORKERS = 64  # each holds the model: more than this is a mistake, not a server


def run(args: argparse.Namespace, ctx: Context) -> int:
    from ..web.app import CORRECTIONS_ENV, DEVICE_ENV, LINES_ENV, MODEL_ENV, create_app
    from ..web.server import bind, serve

    check_range("--port", args.port, 0, 65535, "(0: any free port)")
    check_range("--workers", args.workers, 1, MAX_WORKERS, "server processes")
    device = device_from_args(args, ctx.log, "serving")
    # loads the model first: a bad MODEL is an error before listening
    app = create_app(args.model_path, device=device, corrections=args.corrections, lines=args.lines)
    sock = bind(args.host, args.port)  # a busy port is a one-line error, before "serving" is said
    port = sock.getsockname()[1]  # the one chosen when --port is 0
    ctx.log(f"serving {args.model_path} on http://{args.host}:{port} with {args.workers} process(es) (Ctrl-C stops)")
    try:
        if args.workers == 1:
            serve(app, sock)
        else:
            os.environ[MODEL_ENV] = str(args.model_path.resolve())  # read by each worker's app_from_env
            os.environ[DEVICE_ENV] = device
            if args.corrections is not None:
                os.environ[CORRECTIONS_ENV] = str(args.corrections.resolve())
            if args.lines is not None:
                os.environ[LINES_ENV] = str(args.lines.resolve())
            serve("digitlab.web.app:app_from_env", sock, args.workers)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped (the line above says so): not an error
        ctx.log("stopped")
    finally:
        sock.close()
    return 0
