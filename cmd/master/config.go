package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
	"github.com/videoshard/videoshard/master/client"
)

// Config is what every subcommand needs, read from flags, the environment
// (VIDEOSHARD_MASTER_ + the key in capitals) and a YAML config file, in
// that order of precedence.
type Config struct {
	Worker  string        // key worker: the worker's HOST:PORT
	JSON    bool          // key json: print JSON instead of tables
	Timeout time.Duration // key timeout: limit on a whole command; 0: none
	TLS     TLSConfig     // keys tls_ca, tls_cert, tls_key, tls_server_name
	// Token (key token) is sent to workers that require auth.tokens. It is
	// never printed.
	Token string
}

// TLSConfig is how the master reaches workers that serve TLS. All empty
// means plaintext.
type TLSConfig struct {
	CA         string // key tls_ca: PEM CAs of the workers' certificates (default: the system's)
	Cert, Key  string // keys tls_cert, tls_key: client certificate for mutual TLS
	ServerName string // key tls_server_name: name the workers' certificates carry
}

// securityKeys are the keys of TLSConfig and Token, by flag name.
var securityKeys = map[string]string{
	"tls-ca": "tls_ca", "tls-cert": "tls_cert", "tls-key": "tls_key",
	"tls-server-name": "tls_server_name", "token": "token",
}

// dialOptions are the connection settings of every worker the command
// talks to.
func (c Config) dialOptions() client.DialOptions {
	return client.DialOptions{
		Insecure: c.TLS == TLSConfig{},
		CAFile:   c.TLS.CA, CertFile: c.TLS.Cert, KeyFile: c.TLS.Key, ServerName: c.TLS.ServerName,
		Token: c.Token,
	}
}

// configKeys are the keys a config file may hold.
func configKeys() []string {
	keys := []string{"worker", "json", "timeout"}
	for _, k := range securityKeys {
		keys = append(keys, k)
	}
	for k := range jobDefaults() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// DefaultConfig is the configuration before flags, environment and file.
func DefaultConfig() Config {
	return Config{Worker: "127.0.0.1:50061", Timeout: 60 * time.Second}
}

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	if c.Worker == "" {
		return errors.New("worker: empty address")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: negative duration %s", c.Timeout)
	}
	switch {
	case c.TLS.Cert != "" && c.TLS.Key == "":
		return errors.New("tls_key: empty, but tls_cert is set: give both or neither")
	case c.TLS.Cert == "" && c.TLS.Key != "":
		return errors.New("tls_cert: empty, but tls_key is set: give both or neither")
	}
	return nil
}

// newViper returns a viper holding the defaults and reading the environment.
// The flags are bound to it where they are defined.
func newViper() *viper.Viper {
	v := viper.New()
	d := DefaultConfig()
	v.SetDefault("worker", d.Worker)
	v.SetDefault("json", d.JSON)
	v.SetDefault("timeout", d.Timeout.String())
	v.SetEnvPrefix("VIDEOSHARD_MASTER")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	return v
}

// loadConfig merges the config file named by the key config, if any, and
// returns the validated Config.
func loadConfig(v *viper.Viper) (Config, error) {
	if path := v.GetString("config"); path != "" {
		if err := readConfigFile(v, path); err != nil {
			return Config{}, err
		}
	}
	var cfg Config
	cfg.Worker = strings.TrimSpace(v.GetString("worker"))
	js, err := strconv.ParseBool(fmt.Sprint(v.Get("json")))
	if err != nil {
		return Config{}, fmt.Errorf("json: %q is not a boolean", fmt.Sprint(v.Get("json")))
	}
	cfg.JSON = js
	timeout, err := time.ParseDuration(fmt.Sprint(v.Get("timeout")))
	if err != nil {
		return Config{}, fmt.Errorf("timeout: %q is not a duration (like 30s or 5m)", fmt.Sprint(v.Get("timeout")))
	}
	cfg.Timeout = timeout
	cfg.TLS = TLSConfig{
		CA:         strings.TrimSpace(v.GetString("tls_ca")),
		Cert:       strings.TrimSpace(v.GetString("tls_cert")),
		Key:        strings.TrimSpace(v.GetString("tls_key")),
		ServerName: strings.TrimSpace(v.GetString("tls_server_name")),
	}
	cfg.Token = strings.TrimSpace(v.GetString("token"))
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// readConfigFile merges the YAML file at path into v, refusing unknown keys.
func readConfigFile(v *viper.Viper, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	file := viper.New()
	file.SetConfigType("yaml")
	if err := file.ReadConfig(f); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	var unknown []string
	for _, k := range file.AllKeys() {
		if !slices.Contains(configKeys(), k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("config %s: unknown key %s (known: %s)", path,
			strings.Join(unknown, ", "), strings.Join(configKeys(), ", "))
	}
	if err := v.MergeConfigMap(file.AllSettings()); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}
