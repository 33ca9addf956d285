"""AdGen: product details in, advertising images out, with Z-Image-Turbo through diffusers.

Never imports gradio: `app.py` is the UI shell, `python -m adgen` the CLI; both call `Engine`.
"""
