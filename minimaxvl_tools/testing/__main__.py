"""``python -m minimaxvl_tools.testing [--reader tesseract] [--port N]``: run the TEST DOUBLE for demos.

It serves vLLM's OpenAI-compatible API on loopback until interrupted. With ``--reader tesseract`` image
requests are answered with Tesseract's reading of each image resized into its MiniMax-VL-01 canvas: a
legibility proxy for what the model would be shown, not a model.
"""

from __future__ import annotations

import argparse
import sys
import threading

from .server import READERS, LocalVLLMServer


def main(argv: list[str] | None = None) -> int:
    """Start the double, print its base URL, serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m minimaxvl_tools.testing", description=__doc__)
    parser.add_argument("--reader", choices=READERS, default=None, help="answer image requests by reading")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: a free one)")
    parser.add_argument("--model", default="MiniMaxAI/MiniMax-VL-01")
    args = parser.parse_args(argv)
    server = LocalVLLMServer(model=args.model, port=args.port, reader=args.reader).start()
    print(f"TEST DOUBLE of vLLM (not a model) at {server.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
