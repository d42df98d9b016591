"""The Gradio app (Compare, Benchmark, About tabs). ``build_demo()`` builds it; ``app.py`` launches it."""
