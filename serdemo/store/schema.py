"""The annotation store's SQLite schema, as migrations from one version to the next."""

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE clips (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    language TEXT NOT NULL,
    source TEXT NOT NULL,
    duration REAL NOT NULL,
    added_at TEXT NOT NULL,
    original_name TEXT,
    speaker TEXT,
    session TEXT
);
CREATE INDEX clips_language ON clips(language);
CREATE TABLE model_versions (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    parent TEXT REFERENCES model_versions(id),
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    weights_path TEXT,
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);
-- At most one active row; add_model_version and activate keep it at exactly one.
CREATE UNIQUE INDEX one_active_version ON model_versions(active) WHERE active = 1;
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    clip_id INTEGER NOT NULL REFERENCES clips(id),
    emotion TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('human', 'machine', 'gold')),
    annotator TEXT NOT NULL,
    confidence REAL,
    model_version TEXT,  -- no foreign key: imported labels may name a version of another store
    created_at TEXT NOT NULL,
    retracts TEXT REFERENCES labels(uid),
    CHECK ((emotion IS NULL) = (retracts IS NOT NULL))
);
CREATE INDEX labels_clip ON labels(clip_id);
CREATE INDEX labels_annotator ON labels(annotator);
CREATE INDEX labels_retracts ON labels(retracts);
-- Labels still in force: not retraction rows and not retracted.
CREATE VIEW live_labels AS
    SELECT l.* FROM labels l
    WHERE l.retracts IS NULL AND NOT EXISTS (SELECT 1 FROM labels r WHERE r.retracts = l.uid);
-- Each clip's current label: the latest live human label, else the latest live gold label.
CREATE VIEW current_labels AS
    SELECT * FROM (
        SELECT l.*, ROW_NUMBER() OVER (
            PARTITION BY l.clip_id
            ORDER BY CASE l.kind WHEN 'human' THEN 0 ELSE 1 END, l.created_at DESC, l.id DESC
        ) AS rank
        FROM live_labels l WHERE l.kind IN ('human', 'gold')
    ) WHERE rank = 1;
"""

# v2: a clip whose audio turned out unusable (found at start-up) is set aside with the reason, not
# deleted; labels record who put them into this store; a clip's current label is the latest to
# *arrive* (local id order), so an imported label dated in the future cannot outrank later ones.
_SCHEMA_V2 = """
ALTER TABLE clips ADD COLUMN unusable TEXT;
ALTER TABLE labels ADD COLUMN received_by TEXT;
DROP VIEW current_labels;
CREATE VIEW current_labels AS
    SELECT * FROM (
        SELECT l.*, ROW_NUMBER() OVER (
            PARTITION BY l.clip_id ORDER BY CASE l.kind WHEN 'human' THEN 0 ELSE 1 END, l.id DESC
        ) AS rank
        FROM live_labels l WHERE l.kind IN ('human', 'gold')
    ) WHERE rank = 1;
"""

# MIGRATIONS[i] takes a database from schema version i to i + 1.
MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2)
