/*
 * rpc.discover: the OpenRPC document, generated from the method, field and error tables so
 * that it describes exactly what the agent does.
 */
#include "ag.h"
#include "paraf-config.h"
#include "pf-util.h"

/* Errors any method can return, before or around its own. */
static const enum ag_err common_errors[] = {
	AG_ERR_PARSE, AG_ERR_INVALID_REQUEST, AG_ERR_METHOD_NOT_FOUND, AG_ERR_INVALID_PARAMS,
	AG_ERR_INTERNAL, AG_ERR_REQUEST_TOO_LARGE, AG_ERR_NESTING_TOO_DEEP,
	AG_ERR_TOO_MANY_CLIENTS, AG_ERR_PEER_REFUSED,
};

static json_object *
error_json(enum ag_err e)
{
	const struct ag_error_info *info = ag_error_info(e);
	json_object *o = json_object_new_object(), *data = json_object_new_object();

	json_object_object_add(data, "reason", json_object_new_string(info->reason));
	json_object_object_add(data, "rule", info->rule ? json_object_new_string(info->rule) : NULL);
	json_object_object_add(o, "code", json_object_new_int(info->code));
	json_object_object_add(o, "message", json_object_new_string(info->summary));
	json_object_object_add(o, "data", data);
	return o;
}

static json_object *
method_json(const struct ag_method *m)
{
	json_object *o = json_object_new_object(), *params = json_object_new_array();
	json_object *errs = json_object_new_array(), *result = json_object_new_object();
	json_object *schema = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(m->name));
	json_object_object_add(o, "summary", json_object_new_string(m->summary));
	json_object_object_add(o, "paramStructure", json_object_new_string("by-name"));
	for (const struct ag_field *f = m->params; f && f->name; f++) {
		json_object *p = json_object_new_object();

		json_object_object_add(p, "name", json_object_new_string(f->name));
		json_object_object_add(p, "required", json_object_new_boolean(f->flags & AG_F_REQUIRED));
		if (f->description)
			json_object_object_add(p, "description", json_object_new_string(f->description));
		json_object_object_add(p, "schema", ag_field_schema(f));
		json_object_array_add(params, p);
	}
	json_object_object_add(o, "params", params);
	json_object_object_add(schema, "type", json_object_new_string("object"));
	json_object_object_add(result, "name", json_object_new_string("result"));
	json_object_object_add(result, "description", json_object_new_string(m->result_description));
	json_object_object_add(result, "schema", schema);
	json_object_object_add(o, "result", result);
	for (size_t i = 0; i < ARRAY_SIZE(common_errors); i++)
		json_object_array_add(errs, error_json(common_errors[i]));
	for (const enum ag_err *e = m->errors; *e != _AG_ERR_MAX; e++)
		json_object_array_add(errs, error_json(*e));
	json_object_object_add(o, "errors", errs);
	return o;
}

json_object *
ag_discover(void)
{
	json_object *doc = json_object_new_object(), *info = json_object_new_object();
	json_object *methods = json_object_new_array(), *components = json_object_new_object();
	json_object *errors = json_object_new_object();

	json_object_object_add(doc, "openrpc", json_object_new_string("1.2.6"));
	json_object_object_add(info, "title", json_object_new_string("parafd signing agent"));
	json_object_object_add(info, "version", json_object_new_string(PARAF_VERSION));
	json_object_object_add(info, "description", json_object_new_string(
		"JSON-RPC 2.0, one request per line on a Unix socket; see doc/protocol.md"));
	json_object_object_add(doc, "info", info);
	for (size_t i = 0; i < ag_n_methods; i++)
		json_object_array_add(methods, method_json(&ag_methods[i]));
	json_object_object_add(doc, "methods", methods);
	for (int e = 0; e < _AG_ERR_MAX; e++)
		json_object_object_add(errors, ag_error_info(e)->reason, error_json(e));
	json_object_object_add(components, "errors", errors);
	json_object_object_add(doc, "components", components);
	return doc;
}
