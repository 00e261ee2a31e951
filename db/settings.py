"""Where the database is: the part of the service's settings that Alembic needs too, read
the same way (environment variables, then `.env` in the working directory)."""

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from db.engine import psycopg2_url


class DatabaseSettings(BaseSettings):
    # hide_input_in_errors: a refused value (a secret, say) is never repeated in the error.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/tasks"

    @field_validator("database_url")
    @classmethod
    def use_psycopg2_driver(cls, url: str) -> str:
        url = psycopg2_url(url)
        # Found now, named, rather than inside the first connection's traceback. The
        # messages never quote the URL: it may hold a password.
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ValueError(
                "not a SQLAlchemy URL like postgresql+psycopg2://user:password@host:5432/db"
            ) from None
        except ValueError:
            raise ValueError(_BAD_PORT) from None
        if parsed.port is not None and not 1 <= parsed.port <= 65_535:
            raise ValueError(_BAD_PORT)
        return url


_BAD_PORT = "the port must be a number from 1 to 65535"
