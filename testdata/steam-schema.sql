-- The tables of H2O Steam 1.1.x that steam-overseer reads, as Steam creates
-- them (master/data). Tests build a fresh database from this file, so every
-- query the project runs against Steam's registry runs against this schema.
-- The dataset, cluster and identity tables are left out: nothing here reads
-- them and no foreign key below points at them.

CREATE TABLE meta (
    id integer PRIMARY KEY AUTOINCREMENT,
    key text COLLATE NOCASE NOT NULL,
    value text NOT NULL,
    UNIQUE (key)
);

CREATE TABLE project (
    id integer PRIMARY KEY AUTOINCREMENT,
    name text NOT NULL,
    description text NOT NULL,
    model_category text NOT NULL,
    created datetime NOT NULL
);

CREATE TABLE model (
    id integer PRIMARY KEY AUTOINCREMENT,
    project_id integer NOT NULL,
    training_dataset_id integer NOT NULL,
    validation_dataset_id integer,
    name text NOT NULL,
    cluster_name text NOT NULL,
    model_key text NOT NULL,
    algorithm text NOT NULL,
    model_category text NOT NULL,
    dataset_name text NOT NULL,
    response_column_name text NOT NULL,
    logical_name text,
    location text NOT NULL,
    model_object_type text,
    max_run_time integer,
    metrics text NOT NULL,
    metrics_version text NOT NULL,
    created datetime NOT NULL,
    FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE CASCADE
);

CREATE TABLE service (
    id integer PRIMARY KEY AUTOINCREMENT,
    project_id integer NOT NULL,
    model_id integer NOT NULL,
    name text NOT NULL,
    address text NOT NULL,
    port integer NOT NULL,
    process_id integer NOT NULL,
    state job_state NOT NULL,
    created datetime NOT NULL,
    FOREIGN KEY (model_id) REFERENCES model(id)
);

CREATE TABLE history (
    id integer PRIMARY KEY AUTOINCREMENT,
    action text NOT NULL,
    identity_id integer NOT NULL,
    entity_type_id integer NOT NULL,
    entity_id integer NOT NULL,
    description text NOT NULL,
    created datetime NOT NULL
);

INSERT INTO meta (key, value) VALUES ('version', '1.1.0');
