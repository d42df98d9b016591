"""dllm-viz: the Gradio app (Hugging Face Spaces entry point and ``python app.py``).

    python app.py                         # http://127.0.0.1:7860, built-in tiny model, offline
    python app.py --host 0.0.0.0 --port 8080 --model path/to/model
    python app.py --allow-model-dir /models   # users may also pick models in /models/*
    python app.py --model /models/my-dllm --trust-remote-code   # a folder that ships its own modelling code

The same as ``dllm-viz app``: both run :func:`dllm_viz.ui.server.main`. Importing this module builds nothing.
"""

from dllm_viz.ui.server import main

if __name__ == "__main__":
    main()
