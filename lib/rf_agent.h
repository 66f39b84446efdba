/*
 * rf_agent.h - what librfork's shipper and rf-agent say to each other over
 * the agent's unix socket (SOCK_SEQPACKET, one message each; bin/rf-agent.1,
 * docs/FORK.md "The agent").  Only libc types: librfork includes it.
 *
 * shipper -> agent: struct rf_agent_req, with the hand socket (SCM_RIGHTS:
 *                   the reply line and the connection go there, as rf-send
 *                   -H writes them to its standard output); then, once S
 *                   has stopped, RF_AGENT_GO.  Closing instead: give up.
 *                   RF_AGENT_PREHAND once S is rf-stub already (it
 *                   said "e"): the connection may go to it before the
 *                   reply, which the stub then reads itself.
 * agent -> shipper: RF_AGENT_OK when it takes the request (a refusal, a
 *                   RF_AGENT_FAIL first, or no answer: the shipper runs
 *                   rf-snap and rf-send as without an agent), RF_AGENT_READ
 *                   once S is read and let go (it may become
 *                   its stub), then RF_AGENT_DONE (the reply and the
 *                   connection are on the hand socket; after PREHAND, the
 *                   line may be "prehand" instead of the reply: the image
 *                   has gone, the reply is still to come, on the connection)
 *                   or RF_AGENT_FAIL followed by a one-line reason.
 */
#ifndef RF_AGENT_H
#define RF_AGENT_H

#include <stdint.h>

#define RF_AGENT_VERSION 2

struct rf_agent_req {
	uint32_t version;
	int32_t self;		/* the sender's pid as it sees it: in another pid
				   namespace it differs from SO_PEERCRED's, refused */
	int32_t pid;		/* S, stopped or stopping */
	int32_t ppid;		/* rf-send -p */
	int32_t cpid;		/* rf-send -c; 0 */
	int32_t kfd;		/* rf-send -F */
	int32_t lazy;		/* rf-snap -l */
	int32_t flags;		/* rf-snap -u: RF_AGENT_FILTER_OK */
	int32_t timeout;	/* seconds, rf-send -t */
	char host[256];		/* as RFORK_HOSTS names it */
	char fdkey[33];		/* rf-send -L; "" */
	uint64_t selfrec;	/* rf-snap -c: S's record at this address... */
	uint64_t selfgen;	/* ...for this fork; 0: none */
};

#define RF_AGENT_FILTER_OK 0x1

#define RF_AGENT_GO	'g'
#define RF_AGENT_PREHAND 'p'
#define RF_AGENT_OK	'o'
#define RF_AGENT_READ	'r'
#define RF_AGENT_DONE	'k'
#define RF_AGENT_FAIL	'e'

#endif
