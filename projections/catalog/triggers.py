"""What PostgreSQL maintains on its own in a ``catalog_products`` generation: the
search vector, the change feed's revisions, the narrow copy searches scan, and the
typo-tolerance index.

The product row is wide and carries three GIN indexes (search, categories,
attributes). Stock and rating counters change far more often than the text, so the
triggers are arranged for an update of the counters to stay cheap: the search
vector is recomputed only when the text it is made of is written, and the revision
lives in a narrow side table, so a stock update changes no indexed column of the
product row and PostgreSQL can make it a heap-only (HOT) update that adds no index
entry at all (the table keeps free room in its pages for that: ``fillfactor``).

Each statement is a template whose ``{0}`` is the generation schema.
"""

from __future__ import annotations

SEARCH_DDL = """
CREATE OR REPLACE FUNCTION {0}.catalog_products_search() RETURNS trigger
LANGUAGE plpgsql AS $search$ BEGIN
    NEW.search := setweight(to_tsvector('simple', NEW.name || ' ' || NEW.sku), 'A')
        || setweight(jsonb_to_tsvector('simple', NEW.attributes, '["string"]'), 'B')
        || setweight(to_tsvector('simple', NEW.description), 'C');
    RETURN NEW;
END $search$;
CREATE OR REPLACE TRIGGER catalog_products_search
    BEFORE INSERT OR UPDATE OF name, sku, attributes, description ON {0}.catalog_products
    FOR EACH ROW EXECUTE FUNCTION {0}.catalog_products_search();
"""
"""``search``: name and SKU weighted A, attribute values B, description C, over the
``simple`` configuration. Computed when a row is inserted or one of those columns is
written, not on every update (a generated column is recomputed on each one)."""

REVISION_DDL = """
CREATE SEQUENCE IF NOT EXISTS {0}.catalog_products_revision;
CREATE OR REPLACE FUNCTION {0}.catalog_products_next_revision() RETURNS trigger
LANGUAGE plpgsql AS $rev$ BEGIN
    INSERT INTO {0}.catalog_products_revisions (product_id, revision)
    VALUES (NEW.id, nextval('{0}.catalog_products_revision'))
    ON CONFLICT (product_id) DO UPDATE SET revision = EXCLUDED.revision;
    RETURN NULL;
END $rev$;
CREATE OR REPLACE TRIGGER catalog_products_revision AFTER INSERT OR UPDATE ON {0}.catalog_products
    FOR EACH ROW EXECUTE FUNCTION {0}.catalog_products_next_revision();
"""
"""Every insert or update of a product row gives the product the next revision of its
generation (``catalog_products_revisions``): the change feed that the product cache
and the OpenSearch index follow (``projections.catalog.product_feed``). The view's writers
take turns (``serialised``), so revisions commit in order and "every product with a
revision above N" misses nothing."""

MATCHES_DDL = """
CREATE OR REPLACE FUNCTION {0}.catalog_products_match() RETURNS trigger
LANGUAGE plpgsql AS $match$ BEGIN
    IF NEW.status <> 'published' THEN
        DELETE FROM {0}.catalog_products_matches WHERE id = NEW.id;
    ELSIF TG_OP = 'UPDATE' AND OLD.status = 'published' THEN
        UPDATE {0}.catalog_products_matches m SET
            terms = CASE WHEN OLD.search = NEW.search THEN m.terms ELSE strip(NEW.search) END,
            rank_terms = CASE WHEN OLD.search = NEW.search THEN m.rank_terms
                         ELSE ts_filter(NEW.search, '{{a,b}}') END,
            price_amount = NEW.price_amount, currency = NEW.currency,
            rating_count = NEW.rating_count, rating_avg = NEW.rating_avg,
            in_stock = NEW.available > 0, created_at = NEW.created_at,
            category_path = NEW.category_path
        WHERE m.id = NEW.id;
    ELSE
        INSERT INTO {0}.catalog_products_matches VALUES (NEW.id, strip(NEW.search),
            ts_filter(NEW.search, '{{a,b}}'), NEW.price_amount, NEW.currency,
            NEW.rating_count, NEW.rating_avg, NEW.available > 0, NEW.created_at,
            NEW.category_path);
    END IF;
    RETURN NULL;
END $match$;
CREATE OR REPLACE TRIGGER catalog_products_match_insert AFTER INSERT ON {0}.catalog_products
    FOR EACH ROW WHEN (NEW.status = 'published')
    EXECUTE FUNCTION {0}.catalog_products_match();
CREATE OR REPLACE TRIGGER catalog_products_match_update AFTER UPDATE ON {0}.catalog_products
    FOR EACH ROW WHEN ((OLD.status, OLD.search, OLD.price_amount, OLD.currency,
        OLD.rating_count, OLD.rating_avg, OLD.available > 0, OLD.created_at, OLD.category_path)
        IS DISTINCT FROM (NEW.status, NEW.search, NEW.price_amount, NEW.currency,
        NEW.rating_count, NEW.rating_avg, NEW.available > 0, NEW.created_at,
        NEW.category_path))
    EXECUTE FUNCTION {0}.catalog_products_match();
INSERT INTO {0}.catalog_products_matches
    SELECT id, strip(search), ts_filter(search, '{{a,b}}'), price_amount, currency,
        rating_count, rating_avg, available > 0, created_at, category_path
    FROM {0}.catalog_products
    WHERE status = 'published' AND NOT EXISTS (SELECT FROM {0}.catalog_products_matches);
"""
"""``catalog_products_matches``: what a search scans of each published product, kept
by these triggers in the transaction that writes the product row. A common word's
search reads thousands of rows; a product row is over a kilobyte (text, images), a
row here about half of that:

- ``terms``: the search vector without positions or weights (``strip``), all that
  matching needs, under its own GIN index;
- ``rank_terms``: the name, SKU and attribute terms with their weights (A and B),
  for ranking;
- stock as ``in_stock``: only a change of that flag, not every reservation, touches
  this table; an update that leaves the text alone keeps the stored vectors (no new
  GIN entry). Attribute filters look the attributes up in the product rows.

A generation made before this table existed is filled from its product rows when the
table is first created (while it is empty)."""

TRIGRAM_DDL = """DO $trgm$ BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm unavailable: catalog search without typo tolerance';
    END;
    IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
               WHERE e.extname = 'pg_trgm' AND n.nspname = 'public') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS catalog_products_words_trgm ON '
            || quote_ident({0}) || '.catalog_products_words '
            || 'USING gin (word public.gin_trgm_ops)';
    END IF;
END $trgm$"""
"""Typo tolerance, only where pg_trgm can be installed; into ``public``, so that
dropping a generation schema never drops the extension. Here ``{0}`` is the schema as
a string literal."""
