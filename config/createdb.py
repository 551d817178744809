"""Create the PostgreSQL database of a URL if it does not exist: `python -m config.createdb URL`."""

import sys

import environ
import psycopg
from psycopg import sql


def main(url: str) -> None:
    config = environ.Env.db_url_config(url)
    with psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (config["NAME"],)
        ).fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))


if __name__ == "__main__":
    main(sys.argv[1])
