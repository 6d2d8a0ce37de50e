"""``python -m pi0lite.demo``: the toy demo (``make demo``); the code is :mod:`pi0lite.toy.demo`."""

if __name__ == "__main__":
    from pi0lite.toy.demo import main

    main()
