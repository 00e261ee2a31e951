"""Where the database is: the part of the service's settings that Alembic needs too, read
the same way (environment variables, then `.env` in the working directory)."""

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.engine import psycopg2_url


class DatabaseSettings(BaseSettings):
    # hide_input_in_errors: a refused value (a secret, say) is never repeated in the error.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/tasks"

    @field_validator("database_url")
    @classmethod
    def use_psycopg2_driver(cls, url: str) -> str:
        return psycopg2_url(url)
