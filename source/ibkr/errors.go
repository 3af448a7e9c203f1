package ibkr

// errClass is what an IB error code means to the provider.
type errClass uint8

const (
	// classInfo: a notice ("farm connection is OK"); logged at debug/info.
	classInfo errClass = iota
	// classWarning: logged and counted; nothing to do.
	classWarning
	// classConfig: the contract or request is wrong; the job fails whatever
	// on_unavailable says, since retrying cannot help.
	classConfig
	// classUnavailable: the account may not have this data (entitlement) or
	// a limit was hit; the subscription ends, and on_unavailable decides.
	classUnavailable
	// classAdvisory: an entitlement notice after which data still flows
	// (delayed data, part of the data).
	classAdvisory
	// classConnLost: IB↔TWS connectivity lost (1100); keep the socket.
	classConnLost
	// classRestoredLost: restored, data lost (1101); re-subscribe.
	classRestoredLost
	// classRestoredKept: restored, data kept (1102).
	classRestoredKept
	// classFarm: a market or historical data farm disconnected.
	classFarm
	// classReconnect: reconnect the socket (1300 port reset).
	classReconnect
	// classResubscribe: re-request this subscription (10225 bust event).
	classResubscribe
	// classIgnore: harmless (300: cancel of an unknown id).
	classIgnore
)

// ibError describes one code.
type ibError struct {
	class errClass
	// what is a short name for logs and the README table.
	what string
}

// ibErrors maps the codes the provider acts on. Codes not listed are
// warnings when 2100-2169 and otherwise end the subscription they name as
// classUnavailable (an unknown refusal must not pass silently) or are
// warnings when they name no subscription.
var ibErrors = map[int]ibError{
	100:   {classWarning, "message rate exceeded (more than 50 requests per second)"},
	101:   {classUnavailable, "max number of tickers (market data lines) reached"},
	102:   {classWarning, "duplicate ticker id"},
	162:   {classUnavailable, "historical market data service error (pacing violation or no data)"},
	200:   {classConfig, "no security definition found, or the contract is ambiguous"},
	300:   {classIgnore, "cannot find ticker id (cancel of an ended request)"},
	321:   {classConfig, "request rejected as invalid (error validating request)"},
	322:   {classUnavailable, "server error processing the request"},
	326:   {classConfig, "client id already in use"},
	354:   {classUnavailable, "not subscribed to the requested market data"},
	420:   {classUnavailable, "invalid real-time query (no permission for real-time bars)"},
	1100:  {classConnLost, "connectivity between IB and TWS lost"},
	1101:  {classRestoredLost, "connectivity restored, data lost: re-subscribing"},
	1102:  {classRestoredKept, "connectivity restored, data maintained"},
	1300:  {classReconnect, "TWS socket port reset: reconnecting"},
	2103:  {classFarm, "market data farm connection broken"},
	2104:  {classInfo, "market data farm connection OK"},
	2105:  {classFarm, "historical data farm connection broken"},
	2106:  {classInfo, "historical data farm connection OK"},
	2107:  {classInfo, "historical data farm connection inactive"},
	2108:  {classInfo, "market data farm connection inactive"},
	2119:  {classInfo, "market data farm connecting"},
	2157:  {classFarm, "security definition data farm connection broken"},
	2158:  {classInfo, "security definition data farm connection OK"},
	10089: {classUnavailable, "requires an additional market data subscription for the API"},
	10090: {classAdvisory, "part of the requested market data is not subscribed"},
	10091: {classAdvisory, "partial API entitlement"},
	10167: {classAdvisory, "not subscribed: displaying delayed market data"},
	10168: {classUnavailable, "not subscribed, and delayed market data is not enabled"},
	10186: {classUnavailable, "not subscribed, and delayed market data is not enabled"},
	10190: {classUnavailable, "max number of tick-by-tick requests reached"},
	10197: {classUnavailable, "no market data during a competing live session"},
	10225: {classResubscribe, "bust event: real-time bars must be re-requested"},
}

// classify returns how to treat code for a message about a subscription
// (sub true) or about the connection. 10089 on a market-data (reqMktData)
// subscription is advisory: delayed data follows when market_data_type
// allows it; tick-by-tick and real-time bars have no delayed form.
func classify(code int, sub, marketData bool) ibError {
	if e, ok := ibErrors[code]; ok {
		if code == 10089 && marketData {
			return ibError{classAdvisory, e.what + " (delayed data may follow)"}
		}
		return e
	}
	if code >= 2100 && code <= 2169 {
		return ibError{classWarning, "warning"}
	}
	if sub {
		return ibError{classUnavailable, "request refused"}
	}
	return ibError{classWarning, "error"}
}
