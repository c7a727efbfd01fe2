/* SPDX-License-Identifier: MIT */
/* e2e: 256 MiB per case, send mode 'off' with 1, 2 and 4 channels
 * (test_transport.c built with TRANSPORT_BIG). */
#define TRANSPORT_BIG 1
#define BIG_MODE 0
#include "test_transport.c"
