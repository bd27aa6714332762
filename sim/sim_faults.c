/* sim_faults.c - fault rules: parsing (CLI spec, JSON), matching and firing (see sim_faults.h). */
#include "sim/sim_faults.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[SIM_FAULT_N] = {
    "429", "503", "504", "500", "slow", "expired_token", "malformed", "drop", "nul403",
    "write_timeout",
};

const char *sim_fault_kind_name(enum sim_fault_kind k)
{
    return (unsigned)k < SIM_FAULT_N ? kind_names[k] : "?";
}

void sim_faults_init(struct sim_faults *f, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    rng_seed(&f->rng, seed);
}

void sim_faults_free(struct sim_faults *f)
{
    free(f->rules);
    pthread_mutex_destroy(&f->lock);
}

static void rule_defaults(struct sim_fault *r)
{
    memset(r, 0, sizeof *r);
    r->kind = SIM_FAULT_N;
    r->remaining = -1;
    r->prob = 1.0;
    r->delay_ms = -1;
    r->body_len = 64;
}

static int rule_finish(struct sim_fault *r, char *err, size_t err_size)
{
    if (r->kind == SIM_FAULT_N) {
        snprintf(err, err_size,
                 "fault: kind is required (429|503|504|500|slow|expired_token|malformed|drop|"
                 "nul403|write_timeout)");
        return -1;
    }
    if (r->delay_ms < 0)
        r->delay_ms = r->kind == SIM_FAULT_WRITE_TIMEOUT ? 30000 : 2000;
    if (r->kind == SIM_FAULT_429 && !r->retry_after[0])
        str_copy(r->retry_after, sizeof r->retry_after, "1");
    if (!strcmp(r->retry_after, "none"))
        r->retry_after[0] = '\0';
    return 0;
}

/* Apply key=value to r.  Values are text (CLI) or the JSON scalar's text. */
static int rule_set(struct sim_fault *r, const char *key, const char *val, char *err,
                    size_t err_size)
{
    int64_t n;
    if (!strcmp(key, "kind")) {
        for (int k = 0; k < SIM_FAULT_N; k++)
            if (!strcasecmp(val, kind_names[k]))
                r->kind = (enum sim_fault_kind)k;
        if (r->kind == SIM_FAULT_N)
            goto bad;
    } else if (!strcmp(key, "path")) {
        if (val[0] != '/' || strlen(val) >= sizeof r->path)
            goto bad;
        str_copy(r->path, sizeof r->path, val);
    } else if (!strcmp(key, "cmdlet")) {
        if (strlen(val) >= sizeof r->cmdlet)
            goto bad;
        str_copy(r->cmdlet, sizeof r->cmdlet, val);
    } else if (!strcmp(key, "endpoint")) {
        if (strlen(val) >= sizeof r->endpoint)
            goto bad;
        str_copy(r->endpoint, sizeof r->endpoint, val);
    } else if (!strcmp(key, "method")) {
        if (strlen(val) >= sizeof r->method)
            goto bad;
        str_copy(r->method, sizeof r->method, val);
    } else if (!strcmp(key, "count")) {
        if (parse_i64(val, 0, INT64_MAX, &n))
            goto bad;
        r->remaining = n;
    } else if (!strcmp(key, "after")) {
        if (parse_i64(val, 0, INT64_MAX, &n))
            goto bad;
        r->after = n;
    } else if (!strcmp(key, "prob")) {
        char *end;
        double p = strtod(val, &end);
        if (*end || !(p > 0.0 && p <= 1.0))
            goto bad;
        r->prob = p;
    } else if (!strcmp(key, "delay_ms")) {
        if (parse_i64(val, 0, 600000, &n))
            goto bad;
        r->delay_ms = n;
    } else if (!strcmp(key, "retry_after")) {
        /* seconds (integer or decimal), "date", or "none" */
        char *end;
        if (strcmp(val, "date") && strcmp(val, "none")) {
            double d = strtod(val, &end);
            if (*end || !(d >= 0) || d > 86400 || strlen(val) >= sizeof r->retry_after)
                goto bad;
        }
        str_copy(r->retry_after, sizeof r->retry_after, val);
    } else if (!strcmp(key, "retry_after_s")) {
        if (parse_i64(val, 0, 86400, &n))
            goto bad;
        r->retry_after_s = n;
    } else if (!strcmp(key, "body_len")) {
        if (parse_i64(val, 0, 65536, &n))
            goto bad;
        r->body_len = n;
    } else {
        snprintf(err, err_size,
                 "fault: unknown key '%s' (kind path cmdlet endpoint method count after prob "
                 "delay_ms retry_after retry_after_s body_len)",
                 key);
        return -1;
    }
    return 0;
bad:
    snprintf(err, err_size, "fault: bad value for %s: '%s'", key, val);
    return -1;
}

static int rules_append(struct sim_fault **rules, size_t *n, const struct sim_fault *r)
{
    struct sim_fault *nr = realloc(*rules, (*n + 1) * sizeof *nr);
    if (!nr)
        return -1;
    nr[*n] = *r;
    *rules = nr;
    (*n)++;
    return 0;
}

int sim_faults_add_spec(struct sim_faults *f, const char *spec, char *err, size_t err_size)
{
    struct sim_fault r;
    rule_defaults(&r);
    char *copy = strdup(spec);
    if (!copy) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    int first = 1;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save), first = 0) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            if (!first) {
                snprintf(err, err_size, "fault: expected key=value, got '%s'", tok);
                rc = -1;
                break;
            }
            rc = rule_set(&r, "kind", tok, err, err_size);
            continue;
        }
        *eq = '\0';
        rc = rule_set(&r, tok, eq + 1, err, err_size);
    }
    free(copy);
    if (rc == 0)
        rc = rule_finish(&r, err, err_size);
    if (rc == 0) {
        pthread_mutex_lock(&f->lock);
        if (rules_append(&f->rules, &f->n, &r) != 0) {
            snprintf(err, err_size, "out of memory");
            rc = -1;
        }
        pthread_mutex_unlock(&f->lock);
    }
    return rc;
}

static int rule_from_json(json_t *jr, struct sim_fault *r, char *err, size_t err_size)
{
    rule_defaults(r);
    if (!json_is_object(jr)) {
        snprintf(err, err_size, "fault: each rule must be an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(jr, key, v) {
        char text[200];
        if (json_is_string(v))
            str_copy(text, sizeof text, json_string_value(v));
        else if (json_is_integer(v))
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(text, sizeof text, "%.17g", json_real_value(v));
        else {
            snprintf(err, err_size, "fault: %s must be a string or a number", key);
            return -1;
        }
        if (rule_set(r, key, text, err, err_size) != 0)
            return -1;
    }
    return rule_finish(r, err, err_size);
}

int sim_faults_set_json(struct sim_faults *f, json_t *doc, int replace, char *err,
                        size_t err_size)
{
    json_t *list = doc;
    json_t *seed = NULL;
    if (json_is_object(doc) && json_object_get(doc, "kind") == NULL) {
        list = json_object_get(doc, "faults");
        seed = json_object_get(doc, "seed");
        if (!json_is_array(list)) {
            snprintf(err, err_size, "fault: expected {\"faults\": [...]}");
            return -1;
        }
        if (seed && !json_is_integer(seed)) {
            snprintf(err, err_size, "fault: seed must be an integer");
            return -1;
        }
    }
    struct sim_fault *rules = NULL;
    size_t n = 0;
    if (json_is_array(list)) {
        size_t i;
        json_t *jr;
        json_array_foreach(list, i, jr) {
            struct sim_fault r;
            if (rule_from_json(jr, &r, err, err_size) != 0 || rules_append(&rules, &n, &r) != 0) {
                free(rules);
                return -1;
            }
        }
    } else {
        struct sim_fault r;
        if (rule_from_json(list, &r, err, err_size) != 0 || rules_append(&rules, &n, &r) != 0) {
            free(rules);
            return -1;
        }
    }
    pthread_mutex_lock(&f->lock);
    if (seed)
        rng_seed(&f->rng, (uint64_t)json_integer_value(seed));
    if (replace) {
        free(f->rules);
        f->rules = rules;
        f->n = n;
        rules = NULL;
    } else {
        for (size_t i = 0; i < n; i++)
            if (rules_append(&f->rules, &f->n, &rules[i]) != 0)
                break;
    }
    pthread_mutex_unlock(&f->lock);
    free(rules);
    return 0;
}

int sim_faults_load_file(struct sim_faults *f, const char *path, char *err, size_t err_size)
{
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, err_size, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    char inner[256];
    int rc = sim_faults_set_json(f, doc, 0, inner, sizeof inner);
    json_decref(doc);
    if (rc != 0)
        snprintf(err, err_size, "%s: %s", path, inner);
    return rc;
}

void sim_faults_clear(struct sim_faults *f)
{
    pthread_mutex_lock(&f->lock);
    free(f->rules);
    f->rules = NULL;
    f->n = 0;
    pthread_mutex_unlock(&f->lock);
}

json_t *sim_faults_to_json(struct sim_faults *f)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n; i++) {
        const struct sim_fault *r = &f->rules[i];
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(kind_names[r->kind]));
        if (r->path[0])
            json_object_set_new(o, "path", json_string(r->path));
        if (r->cmdlet[0])
            json_object_set_new(o, "cmdlet", json_string(r->cmdlet));
        if (r->endpoint[0])
            json_object_set_new(o, "endpoint", json_string(r->endpoint));
        if (r->method[0])
            json_object_set_new(o, "method", json_string(r->method));
        json_object_set_new(o, "remaining", json_integer(r->remaining));
        json_object_set_new(o, "after", json_integer(r->after));
        json_object_set_new(o, "prob", json_real(r->prob));
        json_object_set_new(o, "delay_ms", json_integer(r->delay_ms));
        json_object_set_new(o, "retry_after", json_string(r->retry_after));
        json_object_set_new(o, "fired", json_integer((json_int_t)r->fired));
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&f->lock);
    return arr;
}

int sim_faults_pick(struct sim_faults *f, const char *method, const char *path,
                    const char *endpoint, const char *cmdlet, struct sim_fault *out)
{
    int fired = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n && !fired; i++) {
        struct sim_fault *r = &f->rules[i];
        if (r->method[0] && strcasecmp(r->method, method) != 0)
            continue;
        if (r->path[0] && !str_starts(path, r->path))
            continue;
        if (r->cmdlet[0] && (!cmdlet || strcasecmp(r->cmdlet, cmdlet) != 0))
            continue;
        if (r->endpoint[0] && (!endpoint || strcmp(r->endpoint, endpoint) != 0))
            continue;
        if (r->remaining == 0)
            continue;
        if (r->after > 0) {
            r->after--;
            continue;
        }
        if (r->prob < 1.0 && !rng_chance(&f->rng, r->prob))
            continue;
        if (r->remaining > 0)
            r->remaining--;
        r->fired++;
        *out = *r;
        fired = 1;
    }
    pthread_mutex_unlock(&f->lock);
    return fired;
}
