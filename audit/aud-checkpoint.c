/*
 * The checkpoint file: how many records the log had, the last one's hash and place, and the
 * join of its file to the one before, written atomically (a temp file, fsync, rename, fsync
 * of the directory) so that a crash leaves the old checkpoint or the new one, never half.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "aud-internal.h"
#include "pf-util.h"

static json_object *
parse_strict(const char *s, size_t n)
{
	json_tokener *tok = json_tokener_new_ex(4);
	json_object *o;

	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)n);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != n)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static bool
get_u64(json_object *o, const char *key, uint64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	if (json_object_get_int64(v) < 0)
		return false;
	*ret = json_object_get_uint64(v);
	return true;
}

static bool
get_str(json_object *o, const char *key, char *ret, size_t size)
{
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	n = (size_t)json_object_get_string_len(v);
	if (n >= size)
		return false;
	memcpy(ret, json_object_get_string(v), n + 1);
	return true;
}

static bool
hash_ok(const char *h)
{
	return strlen(h) == AUD_HASH_HEX && aud_hex_valid(h, AUD_HASH_HEX);
}

static bool
file_ok(const char *name)
{
	unsigned m, n;

	return aud_file_name_parse(name, &m, &n) == 0;
}

int
aud_checkpoint_read(int dfd, struct aud_checkpoint *ret, char *why, size_t why_size)
{
	static const char *const keys[] = { "count", "head", "file", "offset", "time", "join" };
	struct aud_checkpoint c = {};
	_cleanup_close_ int fd = -1;
	char buf[AUD_CHECKPOINT_MAX + 1];
	json_object *o = NULL, *join;
	struct stat st;
	size_t n = 0, k = 0;
	ssize_t r;

	fd = openat(dfd, AUD_CHECKPOINT_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		snprintf(why, why_size, "the checkpoint cannot be opened: %s", strerror(errno));
		return errno == ELOOP ? -EBADMSG : -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_size, "the checkpoint is not a regular file");
		return -EBADMSG;
	}
	while (n < sizeof(buf)) {
		r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
#define FAIL(...) do { snprintf(why, why_size, __VA_ARGS__); json_object_put(o); return -EBADMSG; } while (0)
	if (n > AUD_CHECKPOINT_MAX)
		FAIL("the checkpoint is longer than %u bytes", AUD_CHECKPOINT_MAX);
	if (n == 0 || buf[n - 1] != '\n' || memchr(buf, '\n', n - 1) || memchr(buf, 0, n))
		FAIL("the checkpoint is not one line");
	o = parse_strict(buf, n - 1);
	if (!o || !json_object_is_type(o, json_type_object))
		FAIL("the checkpoint is not a JSON object");
	json_object_object_foreach(o, key, val) {
		(void)val;
		if (k >= ARRAY_SIZE(keys) || !streq(key, keys[k]))
			FAIL("the checkpoint's keys are not count, head, file, offset, time, join");
		k++;
	}
	if (k != ARRAY_SIZE(keys))
		FAIL("the checkpoint's keys are not count, head, file, offset, time, join");
	if (!get_u64(o, "count", &c.count) || !get_str(o, "head", c.head, sizeof(c.head)) ||
	    !hash_ok(c.head) || !get_str(o, "file", c.file, sizeof(c.file)) ||
	    !get_u64(o, "offset", &c.offset) || !get_str(o, "time", c.time, sizeof(c.time)))
		FAIL("the checkpoint has a missing or ill-typed field");
	if (c.count == 0 ? (c.file[0] || c.offset || !streq(c.head, aud_zero_hash)) :
			   (!file_ok(c.file) || c.offset == 0))
		FAIL("the checkpoint's file and offset do not fit its count");
	json_object_object_get_ex(o, "join", &join);
	if (join) {
		if (!json_object_is_type(join, json_type_object) || c.count == 0 ||
		    json_object_object_length(join) != 3 ||
		    !get_str(join, "from", c.join_from, sizeof(c.join_from)) ||
		    !file_ok(c.join_from) || strcmp(c.join_from, c.file) >= 0 ||
		    !get_u64(join, "seq", &c.join_seq) || c.join_seq == 0 || c.join_seq > c.count ||
		    !get_str(join, "prev", c.join_prev, sizeof(c.join_prev)) || !hash_ok(c.join_prev))
			FAIL("the checkpoint's join is not {\"from\",\"seq\",\"prev\"}");
		c.join = true;
	}
#undef FAIL
	json_object_put(o);
	*ret = c;
	return 0;
}

int
aud_checkpoint_format(const struct aud_checkpoint *c, char **ret)
{
	char join[256];
	int r;

	if (c->join)
		snprintf(join, sizeof(join), "{\"from\":\"%s\",\"seq\":%" PRIu64 ",\"prev\":\"%s\"}",
			c->join_from, c->join_seq, c->join_prev);
	else
		snprintf(join, sizeof(join), "null");
	r = asprintf(ret, "{\"count\":%" PRIu64 ",\"head\":\"%s\",\"file\":\"%s\",\"offset\":%" PRIu64
		",\"time\":\"%s\",\"join\":%s}", c->count, c->head, c->file, c->offset, c->time, join);
	return r < 0 ? -ENOMEM : 0;
}

int
aud_checkpoint_write(int dfd, const char *text)
{
	size_t n = strlen(text), done = 0;
	int fd, r = 0;

	(void)unlinkat(dfd, AUD_CHECKPOINT_TMP, 0);
	fd = openat(dfd, AUD_CHECKPOINT_TMP, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		0600);
	if (fd < 0)
		return -errno;
	while (done < n + 1 && r == 0) {
		ssize_t k = done < n ? write(fd, text + done, n - done) : write(fd, "\n", 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			r = k < 0 ? -errno : -EIO;
		else
			done += (size_t)k;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dfd, AUD_CHECKPOINT_TMP, dfd, AUD_CHECKPOINT_FILE) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dfd, AUD_CHECKPOINT_TMP, 0);
		return r;
	}
	if (fsync(dfd) < 0)
		return -errno;
	return 0;
}
