def engine_config(c):
    return c
