-- The store's schema as the release before schema versions made it (SQLite, from
-- metadata.create_all of feedsvc/store/schema.py at that release), frozen for tests.
CREATE TABLE notes (
	source VARCHAR(200) NOT NULL, 
	rel_path VARCHAR(1000) NOT NULL, 
	size BIGINT NOT NULL, 
	mtime_ns BIGINT NOT NULL, 
	file_hash VARCHAR(64) NOT NULL, 
	problem TEXT, 
	entry_id VARCHAR(1000), 
	PRIMARY KEY (source, rel_path)
);
CREATE TABLE entries (
	id VARCHAR(1000) NOT NULL, 
	source VARCHAR(200) NOT NULL, 
	rel_path VARCHAR(1000) NOT NULL, 
	category_name VARCHAR(300) NOT NULL, 
	category_slug VARCHAR(300) NOT NULL, 
	slug VARCHAR(300) NOT NULL, 
	title TEXT NOT NULL, 
	published DATETIME NOT NULL, 
	updated DATETIME NOT NULL, 
	html TEXT NOT NULL, 
	excerpt TEXT NOT NULL, 
	content_hash VARCHAR(64) NOT NULL, 
	tags TEXT NOT NULL, 
	author TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_entries_category_slug UNIQUE (category_slug, slug)
);
CREATE INDEX ix_entries_source_path ON entries (source, rel_path);
CREATE INDEX ix_entries_category_order ON entries (category_slug, published DESC, updated DESC, id);
CREATE INDEX ix_entries_order ON entries (published DESC, updated DESC, id);
CREATE TABLE links (
	entry_id VARCHAR(1000) NOT NULL, 
	target VARCHAR(1100) NOT NULL, 
	PRIMARY KEY (entry_id, target)
);
CREATE INDEX ix_links_target ON links (target);
CREATE TABLE first_seen (
	entry_id VARCHAR(1000) NOT NULL, 
	seen_at DATETIME NOT NULL, 
	PRIMARY KEY (entry_id)
);
CREATE TABLE tombstones (
	entry_id VARCHAR(1000) NOT NULL, 
	category_slug VARCHAR(300) NOT NULL, 
	title TEXT NOT NULL, 
	entry_path TEXT NOT NULL, 
	deleted DATETIME NOT NULL, 
	PRIMARY KEY (entry_id, category_slug)
);
CREATE TABLE feed_states (
	slug VARCHAR(300) NOT NULL, 
	signature VARCHAR(64) NOT NULL, 
	last_modified DATETIME NOT NULL, 
	PRIMARY KEY (slug)
);
CREATE TABLE meta (
	"key" VARCHAR(100) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE locks (
	name VARCHAR(100) NOT NULL, 
	owner VARCHAR(200) NOT NULL, 
	expires DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
