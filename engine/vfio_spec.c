/* SPDX-License-Identifier: MIT */
/*
 * vfio_spec.c — device spec strings for the CLI (`--device`):
 *   sim:state=256M,precopy=200M,dirty-rate=20M/s[,chunk=64K][,seed=N]
 *       [,caps=p2p+pre_copy][,fail=FROM>TO][,fail-error]
 *   legacy:state=64M[,data=256K][,seed=N][,fail=FROM>TO]
 *   vfio:/dev/vfio/devices/vfio0         (iommufd cdev)
 *   vfio:/dev/vfio/12,device=0000:3b:00.1 (group + device name)
 * Sizes take K/M/G/T (binary) suffixes; rates may end in "/s".
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_vfio.h"

/* Sizes and rates in specs: "256M", "20M/s" (the shared parser). */
static int parse_size(const char *s, uint64_t *out)
{
	return sl_parse_scaled(s, 1, out);
}

static int parse_caps(const char *s, uint32_t *caps)
{
	char buf[64], *tok, *save;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	*caps = SL_VFIO_CAP_STOP_COPY;
	for (tok = strtok_r(buf, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		if (!strcasecmp(tok, "p2p"))
			*caps |= SL_VFIO_CAP_P2P;
		else if (!strcasecmp(tok, "pre_copy") || !strcasecmp(tok, "precopy"))
			*caps |= SL_VFIO_CAP_PRE_COPY;
		else if (strcasecmp(tok, "stop_copy") && strcasecmp(tok, "none"))
			return -EINVAL;
	}
	return 0;
}

static int parse_fail(const char *s, enum sl_vfio_state *from, enum sl_vfio_state *to)
{
	char buf[40];
	const char *gt = strchr(s, '>');

	if (!gt || (size_t)(gt - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(gt - s));
	buf[gt - s] = 0;
	if (sl_vfio_state_parse(buf, from) < 0 || sl_vfio_state_parse(gt + 1, to) < 0 ||
	    *from == *to)
		return -EINVAL;
	return 0;
}

int sl_vfio_spec_new(const char *spec, const char *name, struct sl_vfio_backend **out,
		     struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	char buf[512], *kv, *save;
	const char *body;
	bool sim;

	if (!eb)
		eb = &dummy;
	if (!spec || !out)
		return sl_err(eb, -EINVAL, "device spec: missing");
	if (!strncmp(spec, "vfio:", 5)) {
		struct sl_vfio_kernel_config kc = { .size = sizeof(kc), .device_fd = -1,
						    .name = name };
		char path[256];
		const char *comma = strchr(spec + 5, ',');
		size_t plen = comma ? (size_t)(comma - (spec + 5)) : strlen(spec + 5);

		if (!plen || plen >= sizeof(path))
			return sl_err(eb, -EINVAL, "device spec '%s': vfio needs a device path", spec);
		memcpy(path, spec + 5, plen);
		path[plen] = 0;
		kc.path = path;
		if (comma) {
			if (strncmp(comma + 1, "device=", 7) || !comma[8])
				return sl_err(eb, -EINVAL,
					      "device spec '%s': expected vfio:/dev/vfio/N,device=NAME",
					      spec);
			kc.group_device = comma + 8;
		}
		return sl_vfio_kernel_new(&kc, out, eb);
	}
	if (!strncmp(spec, "sim:", 4)) {
		sim = true;
		body = spec + 4;
	} else if (!strncmp(spec, "legacy:", 7)) {
		sim = false;
		body = spec + 7;
	} else {
		return sl_err(eb, -EINVAL,
			      "device spec '%s': expected sim:..., legacy:... or vfio:PATH", spec);
	}
	if (strlen(body) >= sizeof(buf))
		return sl_err(eb, -EINVAL, "device spec: too long");
	strcpy(buf, body);

	struct sl_devsim_config sc = { .size = sizeof(sc), .name = name };
	struct sl_legacy_config lc = { .size = sizeof(lc), .name = name };
	bool have_state = false;

	for (kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		const char *val = eq ? eq + 1 : "";
		uint64_t v = 0;
		int ret = 0;

		if (eq)
			*eq = 0;
		if (!strcmp(kv, "state")) {
			ret = parse_size(val, &v);
			sc.state_bytes = lc.state_bytes = v;
			have_state = ret == 0;
		} else if (!strcmp(kv, "seed")) {
			ret = parse_size(val, &v);
			sc.seed = lc.seed = v;
		} else if (!strcmp(kv, "fail")) {
			ret = parse_fail(val, &sc.fail_from, &sc.fail_to);
			lc.fail_from = sc.fail_from;
			lc.fail_to = sc.fail_to;
		} else if (sim && !strcmp(kv, "precopy")) {
			ret = parse_size(val, &sc.precopy_bytes);
		} else if (sim && !strcmp(kv, "dirty-rate")) {
			ret = parse_size(val, &sc.dirty_rate);
		} else if (sim && !strcmp(kv, "chunk")) {
			ret = parse_size(val, &sc.chunk_bytes);
		} else if (sim && !strcmp(kv, "caps")) {
			ret = parse_caps(val, &sc.caps);
		} else if (sim && !strcmp(kv, "fail-error") && !eq) {
			sc.fail_to_error = true;
		} else if (!sim && !strcmp(kv, "data")) {
			ret = parse_size(val, &lc.region_data);
		} else {
			return sl_err(eb, -EINVAL, "device spec '%s': unknown key '%s'", spec, kv);
		}
		if (ret < 0)
			return sl_err(eb, -EINVAL, "device spec '%s': bad value for '%s': '%s'", spec,
				      kv, val);
	}
	if (!have_state)
		return sl_err(eb, -EINVAL, "device spec '%s': state=SIZE is required", spec);
	if (sim && sc.precopy_bytes && !sc.caps)
		sc.caps = SL_VFIO_CAP_MASK;
	return sim ? sl_devsim_new(&sc, out, eb) : sl_vfio_legacy_new(&lc, out, eb);
}
