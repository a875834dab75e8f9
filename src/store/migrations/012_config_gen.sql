-- 012_config_gen: one counter that every change to what authenticates a request or
-- describes an app (access keys, projects, apps, their channel credentials) advances, in the
-- same transaction, by trigger, whichever process makes it (the server or the CLI). Request
-- paths cache what they read from those tables under the counter's value and check the
-- counter instead (src/base/tcache.h, store_config_gen): a revoked key fails at once.
CREATE TABLE config_gen (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    gen  INTEGER NOT NULL
);
INSERT INTO config_gen (id, gen) VALUES (1, 0);
CREATE TRIGGER config_gen_access_keys_insert AFTER INSERT ON access_keys
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_access_keys_update AFTER UPDATE ON access_keys
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_access_keys_delete AFTER DELETE ON access_keys
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_projects_insert AFTER INSERT ON projects
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_projects_update AFTER UPDATE ON projects
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_projects_delete AFTER DELETE ON projects
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_apps_insert AFTER INSERT ON apps
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_apps_update AFTER UPDATE ON apps
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_apps_delete AFTER DELETE ON apps
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_app_credentials_insert AFTER INSERT ON app_credentials
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_app_credentials_update AFTER UPDATE ON app_credentials
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
CREATE TRIGGER config_gen_app_credentials_delete AFTER DELETE ON app_credentials
    BEGIN UPDATE config_gen SET gen = gen + 1 WHERE id = 1; END;
