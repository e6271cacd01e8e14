package pricing

// minorUnits lists ISO 4217 currencies with the number of digits after the
// decimal separator of their minor unit. Currencies missing here cannot be
// priced.
var minorUnits = map[string]int32{
	"AED": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2,
	"CLP": 0, "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2,
	"HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3,
	"JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2,
	"OMR": 3, "PHP": 2, "PLN": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2,
	"THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UGX": 0, "USD": 2, "VND": 0,
	"XOF": 0, "ZAR": 2,
}

// MinorUnits returns the number of decimal places of currency's minor unit
// (EUR 2, JPY 0, BHD 3) and whether the currency is known.
func MinorUnits(currency string) (int32, bool) {
	n, ok := minorUnits[currency]
	return n, ok
}
