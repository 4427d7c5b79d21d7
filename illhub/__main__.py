if __name__ == "__main__":
    # imported inside the guard: a parse worker (harvesters/offload.py, spawned) imports this
    # module as its parent's main module and needs none of the CLI
    from illhub.cli import main

    main()
