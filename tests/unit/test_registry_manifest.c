/* test_registry_manifest.c - how berth-registry reads pushed manifests
 * (registry/manifest.c): media types, what must exist before a manifest
 * is accepted, subjects and artifact types, and what is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "registry/manifest.h"
#include "utils.h"

#define D(c) "sha256:" c c c c c c c c c c c c c c c c
#define DA D ("aaaa")
#define DB D ("bbbb")
#define DC D ("cccc")

#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

static struct registry_manifest *
parse_ok (const char *json, const char *content_type)
{
  struct registry_manifest *m = NULL;
  berth_error_t err = NULL;
  int r = registry_manifest_parse (json, strlen (json), content_type, &m, &err);

  if (r != 0)
    print_error ("parse failed: %s\n%s\n", err ? err->msg : "?", json);
  assert_int_equal (r, 0);
  assert_non_null (m);
  return m;
}

/* Refused with a message containing WANT.  */
static void
parse_bad (const char *json, const char *content_type, const char *want)
{
  struct registry_manifest *m = NULL;
  berth_error_t err = NULL;
  int r = registry_manifest_parse (json, strlen (json), content_type, &m, &err);

  if (r == 0 || err == NULL || strstr (err->msg, want) == NULL)
    print_error ("want an error with \"%s\", got %d (%s)\n%s\n", want, r,
                 err ? err->msg : "none", json);
  assert_int_equal (r, -EINVAL);
  assert_null (m);
  assert_non_null (strstr (err->msg, want));
  berth_error_release (&err);
}

static const char image[]
    = "{\"schemaVersion\":2,"
      "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
      "\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" DA "\","
      "\"size\":10},"
      "\"layers\":[{\"mediaType\":\"" OCI_LAYER "\",\"digest\":\"" DB "\","
      "\"size\":20},"
      "{\"mediaType\":\"" OCI_LAYER "\",\"digest\":\"" DC "\",\"size\":0}],"
      "\"annotations\":{\"k\":\"v\"}}";

static void
test_image (void **state)
{
  struct registry_manifest *m = parse_ok (image, NULL);

  assert_int_equal (m->kind, REGISTRY_MANIFEST_IMAGE);
  assert_string_equal (m->media_type, REGISTRY_MT_OCI_MANIFEST);
  assert_null (m->artifact_type);
  assert_string_equal (m->config_media_type, OCI_CONFIG);
  assert_int_equal (m->n_refs, 3);
  assert_string_equal (m->refs[0].digest.str, DA);
  assert_int_equal (m->refs[0].size, 10);
  assert_string_equal (m->refs[1].digest.str, DB);
  assert_string_equal (m->refs[2].digest.str, DC);
  assert_true (m->refs[0].required && m->refs[1].required
               && m->refs[2].required);
  assert_false (m->refs[0].is_manifest);
  assert_true (m->refs[1].supported);
  assert_false (m->has_subject);
  assert_non_null (m->annotations);
  /* Without artifactType, an image's is its config's media type.  */
  assert_string_equal (registry_manifest_effective_artifact_type (m),
                       OCI_CONFIG);
  registry_manifest_free (m);

  /* The same with the Content-Type (parameters ignored) agreeing.  */
  m = parse_ok (image, "application/vnd.oci.image.manifest.v1+json; x=y");
  registry_manifest_free (m);
  /* A Content-Type that is no manifest type does not matter.  */
  m = parse_ok (image, "application/octet-stream");
  registry_manifest_free (m);
}

static void
test_docker_foreign (void **state)
{
  const char *json
      = "{\"schemaVersion\":2,"
        "\"mediaType\":\"" REGISTRY_MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":"
        "\"application/vnd.docker.container.image.v1+json\","
        "\"digest\":\"" DA "\",\"size\":1},"
        "\"layers\":["
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff."
        "tar.gzip\",\"digest\":\"" DB "\",\"size\":5,"
        "\"urls\":[\"https://example.com/l\"]},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable."
        "v1.tar+gzip\",\"digest\":\"" DC "\",\"size\":5},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        "\"digest\":\"" DA "\",\"size\":5,\"urls\":[\"https://x/y\"]},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        "\"digest\":\"" DB "\",\"size\":5}]}";
  struct registry_manifest *m = parse_ok (json, REGISTRY_MT_DOCKER_MANIFEST);

  assert_string_equal (m->media_type, REGISTRY_MT_DOCKER_MANIFEST);
  assert_int_equal (m->kind, REGISTRY_MANIFEST_IMAGE);
  assert_int_equal (m->n_refs, 5);
  assert_true (m->refs[0].required);  /* config */
  assert_false (m->refs[1].required); /* foreign */
  assert_false (m->refs[2].required); /* nondistributable */
  assert_false (m->refs[3].required); /* has urls */
  assert_true (m->refs[4].required);
  registry_manifest_free (m);
}

static void
test_index (void **state)
{
  const char *json
      = "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX "\","
        "\"manifests\":["
        "{\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\",\"digest\":\"" DA
        "\",\"size\":100,\"platform\":{\"architecture\":\"amd64\","
        "\"os\":\"linux\"}},"
        "{\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\",\"digest\":\"" DB
        "\",\"size\":200}]}";
  const char *list
      = "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_DOCKER_LIST "\","
        "\"manifests\":[]}";
  struct registry_manifest *m = parse_ok (json, NULL);

  assert_int_equal (m->kind, REGISTRY_MANIFEST_INDEX);
  assert_string_equal (m->media_type, REGISTRY_MT_OCI_INDEX);
  assert_int_equal (m->n_refs, 2);
  assert_true (m->refs[0].is_manifest && m->refs[1].is_manifest);
  assert_true (m->refs[0].required && m->refs[1].required);
  /* An index without artifactType has none.  */
  assert_null (registry_manifest_effective_artifact_type (m));
  registry_manifest_free (m);

  m = parse_ok (list, NULL);
  assert_int_equal (m->kind, REGISTRY_MANIFEST_INDEX);
  assert_string_equal (m->media_type, REGISTRY_MT_DOCKER_LIST);
  assert_int_equal (m->n_refs, 0);
  registry_manifest_free (m);
}

static void
test_artifact (void **state)
{
  const char *json
      = "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.example.sbom.v1\","
        "\"config\":{\"mediaType\":\"" REGISTRY_MT_OCI_EMPTY "\","
        "\"digest\":\"" REGISTRY_EMPTY_DIGEST "\",\"size\":2,"
        "\"data\":\"e30=\"},"
        "\"layers\":[],"
        "\"subject\":{\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\","
        "\"digest\":\"" DC "\",\"size\":321},"
        "\"annotations\":{\"org.example\":\"yes\"}}";
  struct registry_manifest *m = parse_ok (json, NULL);
  json_t *desc;

  assert_string_equal (m->artifact_type, "application/vnd.example.sbom.v1");
  assert_string_equal (registry_manifest_effective_artifact_type (m),
                       "application/vnd.example.sbom.v1");
  assert_int_equal (m->n_refs, 1);
  /* The empty descriptor need not have been pushed.  */
  assert_false (m->refs[0].required);
  assert_true (m->has_subject);
  assert_string_equal (m->subject.digest.str, DC);

  desc = registry_manifest_referrer (m, DA, 1234);
  assert_string_equal (json_string_value (json_object_get (desc, "mediaType")),
                       REGISTRY_MT_OCI_MANIFEST);
  assert_string_equal (json_string_value (json_object_get (desc, "digest")),
                       DA);
  assert_int_equal (json_integer_value (json_object_get (desc, "size")), 1234);
  assert_string_equal (
      json_string_value (json_object_get (desc, "artifactType")),
      "application/vnd.example.sbom.v1");
  assert_string_equal (
      json_string_value (json_object_get (json_object_get (desc, "annotations"),
                                          "org.example")),
      "yes");
  json_decref (desc);
  registry_manifest_free (m);
}

static void
test_media_type_choice (void **state)
{
  const char *bare
      = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_CONFIG
        "\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[]}";
  const char *bare_index = "{\"schemaVersion\":2,\"manifests\":[]}";
  struct registry_manifest *m;
  char buf[64];

  /* No mediaType: the Content-Type, else the shape.  */
  m = parse_ok (bare, REGISTRY_MT_DOCKER_MANIFEST);
  assert_string_equal (m->media_type, REGISTRY_MT_DOCKER_MANIFEST);
  registry_manifest_free (m);
  m = parse_ok (bare, NULL);
  assert_string_equal (m->media_type, REGISTRY_MT_OCI_MANIFEST);
  registry_manifest_free (m);
  m = parse_ok (bare_index, "application/json");
  assert_string_equal (m->media_type, REGISTRY_MT_OCI_INDEX);
  registry_manifest_free (m);

  assert_string_equal (
      registry_media_type_of (" a/b ; charset=x", buf, sizeof (buf)), "a/b");
  assert_string_equal (registry_media_type_of (NULL, buf, sizeof (buf)), "");
  assert_true (registry_media_type_is_manifest (REGISTRY_MT_DOCKER_LIST));
  assert_false (registry_media_type_is_manifest ("application/json"));
}

static void
test_unsupported_digest (void **state)
{
  const char *json
      = "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\","
        "\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" DA
        "\",\"size\":1},"
        "\"layers\":[{\"mediaType\":\"" OCI_LAYER "\","
        "\"digest\":\"md5:d41d8cd98f00b204e9800998ecf8427e\",\"size\":1}]}";
  struct registry_manifest *m = parse_ok (json, NULL);

  /* Well-formed: the registry then answers MANIFEST_BLOB_UNKNOWN, as it
   * cannot hold such a blob.  */
  assert_false (m->refs[1].supported);
  assert_true (m->refs[1].required);
  assert_string_equal (m->refs[1].digest_str,
                       "md5:d41d8cd98f00b204e9800998ecf8427e");
  registry_manifest_free (m);
}

#define CFG                                                                    \
  "{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" DA "\",\"size\":1}"
#define MT_OCI "\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\","

static void
test_refused (void **state)
{
  parse_bad ("", NULL, "invalid JSON");
  parse_bad ("{", NULL, "invalid JSON");
  parse_bad ("[]", NULL, "JSON object");
  parse_bad ("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", NULL,
             "invalid JSON");
  parse_bad ("{\"manifests\":[]}", NULL, "schemaVersion");
  parse_bad ("{\"schemaVersion\":1,\"manifests\":[]}", NULL, "schemaVersion");
  parse_bad ("{\"schemaVersion\":\"2\",\"manifests\":[]}", NULL,
             "schemaVersion");
  parse_bad ("{\"schemaVersion\":2,\"mediaType\":\"application/"
             "vnd.docker.distribution.manifest.v1+prettyjws\"}",
             NULL, "schema 1");
  parse_bad ("{\"schemaVersion\":2,\"mediaType\":\"application/x-foo\","
             "\"manifests\":[]}",
             NULL, "unsupported manifest media type");
  parse_bad ("{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}", NULL,
             "mediaType");
  parse_bad ("{\"schemaVersion\":2}", NULL, "not a manifest");
  /* The body and the header disagree.  */
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG ",\"layers\":[]}",
             REGISTRY_MT_DOCKER_MANIFEST, "does not match");
  /* Images need config and layers, indexes manifests.  */
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"layers\":[]}", NULL, "config");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG "}", NULL,
             "layers");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG ",\"layers\":{}}",
             NULL, "layers");
  parse_bad ("{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX
             "\"}",
             NULL, "manifests");
  /* Both an image and an index (CVE-2021-41190).  */
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[],\"manifests\":[]}",
             NULL, "manifests");
  parse_bad ("{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX
             "\",\"manifests\":[],\"layers\":[]}",
             NULL, "layers");
  /* Descriptors.  */
  parse_bad ("{\"schemaVersion\":2," MT_OCI
             "\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"size\":1},"
             "\"layers\":[]}",
             NULL, "config.digest");
  parse_bad ("{\"schemaVersion\":2," MT_OCI
             "\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" DA
             "\"},\"layers\":[]}",
             NULL, "config.size");
  parse_bad ("{\"schemaVersion\":2," MT_OCI
             "\"config\":{\"mediaType\":\"" OCI_CONFIG "\",\"digest\":\"" DA
             "\",\"size\":-1},\"layers\":[]}",
             NULL, "config.size");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":{\"digest\":\"" DA
             "\",\"size\":1},\"layers\":[]}",
             NULL, "config.mediaType");
  parse_bad ("{\"schemaVersion\":2," MT_OCI
             "\"config\":{\"mediaType\":\"not a type\",\"digest\":\"" DA
             "\",\"size\":1},\"layers\":[]}",
             NULL, "config.mediaType");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[{\"mediaType\":\"" OCI_LAYER "\","
             "\"digest\":\"sha256:xyz\",\"size\":1}]}",
             NULL, "layers[0].digest");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[7]}",
             NULL, "layers[0]");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[],\"annotations\":{\"a\":1}}",
             NULL, "annotations");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[],\"artifactType\":\"x\"}",
             NULL, "artifactType");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[],\"subject\":{\"mediaType\":\"a/b\","
             "\"digest\":\"md5:d41d8cd98f00b204e9800998ecf8427e\","
             "\"size\":1}}",
             NULL, "subject");
  parse_bad ("{\"schemaVersion\":2," MT_OCI "\"config\":" CFG
             ",\"layers\":[],\"subject\":\"x\"}",
             NULL, "subject");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_image),
    cmocka_unit_test (test_docker_foreign),
    cmocka_unit_test (test_index),
    cmocka_unit_test (test_artifact),
    cmocka_unit_test (test_media_type_choice),
    cmocka_unit_test (test_unsupported_digest),
    cmocka_unit_test (test_refused),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
