-- The seed's tasks table: a title, a done flag, an id used as the pagination cursor.
CREATE TABLE IF NOT EXISTS tasks (
    id          bigserial PRIMARY KEY,
    title       text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    done        boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
