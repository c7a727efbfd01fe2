/* SPDX-License-Identifier: MIT */
/* Refusals (wrong key/version, duplicate channel, other session) and dead or
 * silent peers: test_transport.c built with TRANSPORT_FAULTS. */
#define TRANSPORT_FAULTS 1
#include "test_transport.c"
