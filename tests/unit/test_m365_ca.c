/*
 * test_m365_ca.c - the pure Conditional Access logic of m365/ca.h: which
 * policies concern legacy authentication and which are Microsoft-managed,
 * the policy Assent wants, normalization of Graph's full shape, subset,
 * differences (outside edits), the PATCH that undoes them, the request hash.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "m365/ca.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

/* A policy as Graph answers it: every property, unset ones null or empty. */
static const char graph_policy[] =
    "{\"@odata.context\": \"x\", \"id\": \"p1\", \"templateId\": null,"
    " \"displayName\": \"Assent: Block legacy authentication\","
    " \"createdDateTime\": \"2026-01-01T00:00:00Z\", \"modifiedDateTime\": null,"
    " \"state\": \"enabledForReportingButNotEnforced\","
    " \"conditions\": {\"userRiskLevels\": [], \"signInRiskLevels\": [],"
    "   \"clientAppTypes\": [\"exchangeActiveSync\", \"other\"], \"platforms\": null,"
    "   \"locations\": null, \"devices\": null,"
    "   \"applications\": {\"includeApplications\": [\"All\"], \"excludeApplications\": [],"
    "     \"applicationFilter\": null},"
    "   \"users\": {\"includeUsers\": [\"All\"], \"excludeUsers\": [], \"includeGroups\": [],"
    "     \"excludeGroups\": [\"g1\"], \"includeGuestsOrExternalUsers\": null}},"
    " \"grantControls\": {\"operator\": \"OR\", \"builtInControls\": [\"block\"],"
    "   \"customAuthenticationFactors\": [], \"termsOfUse\": [], \"authenticationStrength\": null},"
    " \"sessionControls\": null}";

static void test_recognise(void **state)
{
    (void)state;
    json_t *p = load(graph_policy);
    assert_true(ca_policy_is_legacy_block(p));
    assert_false(ca_policy_is_managed(p));
    json_t *mfa = load("{\"displayName\": \"Microsoft-managed: MFA\", \"conditions\": "
                       "{\"clientAppTypes\": [\"all\"]}, \"grantControls\": "
                       "{\"builtInControls\": [\"mfa\"]}}");
    assert_false(ca_policy_is_legacy_block(mfa));
    assert_true(ca_policy_is_managed(mfa));
    json_t *eas = load("{\"displayName\": \"x\", \"conditions\": {\"clientAppTypes\": "
                       "[\"exchangeActiveSync\"]}, \"grantControls\": {\"builtInControls\": "
                       "[\"block\"]}}");
    assert_true(ca_policy_is_legacy_block(eas));
    json_decref(p);
    json_decref(mfa);
    json_decref(eas);
}

static void test_desired_matches_graph_shape(void **state)
{
    (void)state;
    json_t *want = ca_policy_desired("Assent: Block legacy authentication", "g1", NULL, 0);
    json_t *want_n = ca_policy_normalize(want);
    json_t *have = load(graph_policy);
    json_t *have_n = ca_policy_normalize(have);
    /* Graph's nulls, empties and read-only members vanish: the same policy. */
    assert_true(json_equal(want_n, have_n));
    assert_true(ca_json_subset(want_n, have_n));
    json_t *d = ca_policy_diff(want_n, have_n);
    assert_int_equal(json_array_size(d), 0);
    json_decref(d);
    /* excludeUsers only when given; enforce switches the state. */
    json_t *ex = load("[\"u1\"]");
    json_t *w2 = ca_policy_desired("n", "g1", ex, 1);
    assert_string_equal(json_string_value(json_object_get(w2, "state")), "enabled");
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(
                            json_object_get(w2, "conditions"), "users"), "excludeUsers"), 0)),
                        "u1");
    assert_null(json_object_get(json_object_get(json_object_get(want, "conditions"), "users"),
                                "excludeUsers"));
    json_decref(ex);
    json_decref(w2);
    json_decref(want);
    json_decref(want_n);
    json_decref(have);
    json_decref(have_n);
}

static void test_outside_edit_and_patch(void **state)
{
    (void)state;
    json_t *orig = load(graph_policy);
    json_t *written = ca_policy_normalize(orig);
    json_decref(orig);
    json_t *edited = load(graph_policy);
    json_object_set_new(json_object_get(edited, "conditions"), "locations",
                        load("{\"includeLocations\": [\"All\"], \"excludeLocations\": []}"));
    json_object_set_new(edited, "state", json_string("disabled"));
    json_t *edited_n = ca_policy_normalize(edited);
    json_t *d = ca_policy_diff(written, edited_n);
    assert_int_equal(json_array_size(d), 2);
    /* sorted by path */
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "path")),
                        "conditions.locations");
    assert_true(json_is_null(json_object_get(json_array_get(d, 0), "was")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 1), "path")), "state");
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 1), "now")),
                        "disabled");
    /* Still a superset of what Assent wants, minus the state: */
    assert_false(ca_json_subset(written, edited_n));
    /* The patch sets the state back and removes locations with null. */
    json_t *patch = ca_policy_patch(edited_n, written);
    assert_string_equal(json_string_value(json_object_get(patch, "state")),
                        "enabledForReportingButNotEnforced");
    assert_true(json_is_null(json_object_get(json_object_get(patch, "conditions"), "locations")));
    assert_null(json_object_get(json_object_get(patch, "conditions"), "users"));
    assert_null(json_object_get(patch, "displayName"));
    json_decref(patch);
    json_decref(d);
    json_decref(written);
    json_decref(edited);
    json_decref(edited_n);
}

static void test_request_hash(void **state)
{
    (void)state;
    json_t *a = ca_request("p", "g", NULL, 0, NULL);
    json_t *b = ca_request("p", "g", NULL, 1, NULL);
    json_t *c = ca_request("p", "g", NULL, 0, NULL);
    char ha[65], hb[65], hc[65];
    struct as_err err = {0};
    assert_int_equal(ca_json_hash(a, ha, &err), AS_OK);
    assert_int_equal(ca_json_hash(b, hb, &err), AS_OK);
    assert_int_equal(ca_json_hash(c, hc, &err), AS_OK);
    assert_string_not_equal(ha, hb);
    assert_string_equal(ha, hc);
    assert_int_equal(strlen(ha), 64);
    assert_int_equal(json_array_size(json_object_get(a, "overwrite")), 0);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recognise),
        cmocka_unit_test(test_desired_matches_graph_shape),
        cmocka_unit_test(test_outside_edit_and_patch),
        cmocka_unit_test(test_request_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
